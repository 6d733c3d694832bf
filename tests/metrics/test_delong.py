"""DeLong's test: AUCs equal scikit-learn, variances equal the textbook O(mn) formula, identical
predictors give p = 1, and p agrees with a paired bootstrap."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chestxai.metrics.delong import auc_covariance, delong_test
from chestxai.metrics.significance import format_p, paired_bootstrap_auc, per_class_delong


def textbook_covariance(y, a, b):
    """DeLong et al. (1988) written directly: psi kernel over all positive/negative pairs."""
    pos, neg = y == 1, y == 0

    def psi(s):
        d = s[pos][:, None] - s[neg][None, :]
        return (d > 0) + 0.5 * (d == 0)

    ka, kb = psi(a), psi(b)
    m, n = ka.shape
    v10 = np.stack([ka.mean(1), kb.mean(1)])  # per positive
    v01 = np.stack([ka.mean(0), kb.mean(0)])  # per negative
    return np.cov(v10) / m + np.cov(v01) / n


def two_predictors(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    a = y + rng.normal(0, 0.9, n)
    b = 0.5 * y + 0.5 * a + rng.normal(0, 0.9, n)
    return y, np.round(a, 1), np.round(b, 1)  # rounding adds ties


def test_aucs_and_covariance_match_the_textbook_formula():
    y, a, b = two_predictors()
    aucs, cov = auc_covariance(y, np.stack([a, b]))
    assert aucs[0] == pytest.approx(roc_auc_score(y, a))
    assert aucs[1] == pytest.approx(roc_auc_score(y, b))
    np.testing.assert_allclose(cov, textbook_covariance(y, a, b), rtol=1e-10)


def test_hand_worked_case():
    # 2 positives (0.9, 0.4), 2 negatives (0.6, 0.1): AUC = 3/4; placements pos: 1, 0.5; neg: 0.5, 0
    y = np.array([1, 1, 0, 0.0])
    aucs, cov = auc_covariance(y, np.array([[0.9, 0.4, 0.6, 0.1]]))
    assert aucs[0] == pytest.approx(0.75)
    # var(pos placements [1, .5]) / 2 + var(1 - neg placements [.5, 1]) / 2 = .125/2 + .125/2
    assert cov[0, 0] == pytest.approx(0.125)


def test_identical_predictors_give_p_one():
    y, a, _ = two_predictors(1)
    r = delong_test(y, a, a.copy())
    assert r.diff == 0 and r.p_value == 1.0


def test_delong_agrees_with_paired_bootstrap():
    y, a, b = two_predictors(2, n=300)
    r = delong_test(y, a, b)
    sig = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731  probabilities for the bootstrap API
    pb = paired_bootstrap_auc(y[:, None], sig(a)[:, None], sig(b)[:, None], "binary", n_boot=2000, seed=0)
    assert pb.diff == pytest.approx(r.diff)
    assert abs(pb.p_value - r.p_value) < 0.1
    # and a clearly better predictor is significant under both
    rng = np.random.default_rng(5)
    good, bad = y + rng.normal(0, 0.3, len(y)), y + rng.normal(0, 2.0, len(y))
    assert delong_test(y, good, bad).p_value < 1e-3
    pb = paired_bootstrap_auc(y[:, None], sig(good)[:, None], sig(bad)[:, None], "binary", n_boot=1000)
    assert pb.p_value < 0.01


def test_per_class_delong_skips_undefined_classes():
    rng = np.random.default_rng(3)
    y = (rng.random((50, 2)) < 0.4).astype(float)
    y[:, 1] = 0
    p = rng.random((50, 2))
    out = per_class_delong(y, p, p[::-1].copy(), "multilabel", ["a", "b"])
    assert out["a"] is not None and out["b"] is None


def test_too_few_cases_is_an_error():
    with pytest.raises(ValueError, match="at least two positive"):
        delong_test(np.array([1, 0, 0.0]), np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.2, 0.1]))


def test_a_bootstrap_p_value_is_never_zero_and_prints_as_a_bound():
    y, _, _ = two_predictors(2, n=300)
    rng = np.random.default_rng(5)
    good, bad = y + rng.normal(0, 0.1, len(y)), y + rng.normal(0, 3.0, len(y))
    sig = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
    pb = paired_bootstrap_auc(y[:, None], sig(good)[:, None], sig(bad)[:, None], "binary", n_boot=500)
    assert pb.diff > 0.2
    assert pb.p_value == pytest.approx(2 / 501)  # no replicate crossed zero: (1 + 0) / (1 + n), two-sided
    assert format_p(pb.p_value) == "0.00399" and format_p(2e-17) == "< 0.001" and format_p(0.5) == "0.5"
    assert format_p(float("nan")) == "n/a"


def test_unpaired_delong_hand_computed():
    """Worked by hand: a has positives (0.9, 0.6) vs negatives (0.7, 0.2): placement values
    (1, 1/2) and (1/2, 1), AUC 3/4, Var = 1/8 / 2 + 1/8 / 2 = 1/8. b has positives (0.8, 0.3, 0.4)
    vs negatives (0.5, 0.1): (1, 1/2, 1/2) and (1/3, 1), AUC 2/3, Var = (1/12)/3 + (2/9)/2 = 5/36."""
    from math import erfc, sqrt

    from chestxai.metrics.delong import delong_unpaired

    r = delong_unpaired(np.array([1, 1, 0, 0]), np.array([0.9, 0.6, 0.7, 0.2]),
                        np.array([1, 1, 1, 0, 0]), np.array([0.8, 0.3, 0.4, 0.5, 0.1]))  # fmt: skip
    assert r.auc_a == pytest.approx(0.75) and r.auc_b == pytest.approx(2 / 3)
    se = sqrt(1 / 8 + 5 / 36)
    assert r.se == pytest.approx(se)
    assert r.z == pytest.approx((1 / 12) / se)
    assert r.p_value == pytest.approx(erfc((1 / 12) / se / sqrt(2)))


def test_unpaired_delong_variance_is_the_paired_diagonal_and_nan_dropped():
    from chestxai.metrics.delong import delong_unpaired

    y, a, b = two_predictors(seed=3)
    _, cov_a = auc_covariance(y, a)
    _, cov_b = auc_covariance(y, b)
    y_nan = np.concatenate([y, [np.nan]])
    r = delong_unpaired(y_nan, np.concatenate([a, [5.0]]), y, b)
    assert r.se == pytest.approx(np.sqrt(cov_a[0, 0] + cov_b[0, 0]))
    assert r.auc_a == pytest.approx(roc_auc_score(y, a)) and r.auc_b == pytest.approx(roc_auc_score(y, b))
    same = delong_unpaired(y, a, y, a)
    assert same.diff == 0 and same.p_value == 1.0


def test_unpaired_delong_detects_a_real_drop_and_not_a_null_one():
    """Internal scores separate well, external ones barely: p tiny. Two draws of one distribution: p large."""
    from chestxai.metrics.delong import delong_unpaired

    rng = np.random.default_rng(0)

    def draw(n, signal):
        y = (rng.random(n) < 0.5).astype(float)
        return y, signal * y + rng.normal(0, 1, n)

    strong, weak = draw(300, 2.5), draw(300, 0.3)
    assert delong_unpaired(*strong, *weak).p_value < 1e-6
    assert delong_unpaired(*draw(300, 1.0), *draw(300, 1.0)).p_value > 0.01

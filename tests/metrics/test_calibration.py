"""ECE on a hand-worked case; temperature scaling lowers NLL and recovers a known temperature."""

import numpy as np
import pytest

from chestxai.metrics.calibration import (
    apply_temperature,
    brier_scores,
    calibration_summary,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_curve,
)


def test_ece_hand_worked():
    # 2 bins: [0, .5) holds .1 and .2 (mean .15, 1 of 2 positive -> gap .35);
    #         [.5, 1] holds .8 and .9 (mean .85, 2 of 2 positive -> gap .15); ECE = .5*.35 + .5*.15
    assert expected_calibration_error([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=2) == pytest.approx(0.25)
    curve = reliability_curve([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=4)
    assert curve["count"] == [2, 0, 0, 2]
    assert np.isnan(curve["mean_predicted"][1])


def test_perfectly_calibrated_bins_have_zero_ece():
    assert expected_calibration_error([0.25] * 4 + [0.75] * 4, [1, 0, 0, 0, 1, 1, 1, 0], n_bins=2) == 0.0


def overconfident_binary(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    z = (2 * y - 1) + rng.normal(0, 1, n)  # true log-odds = 2 z
    return 1 / (1 + np.exp(-6 * z)), y  # the model's log-odds are 6 z: temperature 3


def test_temperature_scaling_lowers_nll_and_recovers_temperature():
    p, y = overconfident_binary()
    t = fit_temperature(p[:1000, None], y[:1000, None], "binary")  # "validation" half
    assert t == pytest.approx(3.0, rel=0.15)
    test_p, test_y = p[1000:, None], y[1000:, None]
    before = negative_log_likelihood(test_p, test_y, "binary")
    after = negative_log_likelihood(apply_temperature(test_p, t, "binary"), test_y, "binary")
    assert after < before
    ece_after = calibration_summary(apply_temperature(test_p, t, "binary"), test_y, "binary", ["x"])["ece"]
    assert ece_after < calibration_summary(test_p, test_y, "binary", ["x"])["ece"]


def test_temperature_scaling_multiclass_keeps_argmax():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 600)
    logits = 4 * (np.eye(3)[labels] + rng.normal(0, 0.8, (600, 3)))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.eye(3)[labels]
    t = fit_temperature(p, y, "multiclass")
    assert t > 1.5  # overconfident -> soften
    scaled = apply_temperature(p, t, "multiclass")
    assert negative_log_likelihood(scaled, y, "multiclass") < negative_log_likelihood(p, y, "multiclass")
    np.testing.assert_array_equal(scaled.argmax(1), p.argmax(1))
    np.testing.assert_allclose(scaled.sum(1), 1.0)


@pytest.mark.parametrize(
    "task,n_cls", [("binary", 1), ("multilabel", 3), ("multiclass", 2), ("multiclass", 4)]
)
def test_brier_score_per_class_and_macro_match_sklearn(task, n_cls):
    """Issue 9 (weaker): metrics.json carries the Brier score beside ECE and NLL, per class and macro,
    equal to scikit-learn's brier_score_loss (NaN targets excluded, as everywhere)."""
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(3)
    n = 60
    if task == "multiclass":
        probs = rng.dirichlet(np.ones(n_cls), size=n)
        targets = np.eye(n_cls)[rng.integers(0, n_cls, n)]
        targets[5] = np.nan  # an unknown row is dropped whole
    else:
        probs = rng.random((n, n_cls))
        targets = (rng.random((n, n_cls)) < 0.4).astype(float)
        targets[::7, 0] = np.nan
    names = [f"c{i}" for i in range(n_cls)]
    summary = calibration_summary(probs, targets, task, names)
    expected = []
    for c, name in enumerate(names):
        keep = ~np.isnan(targets).any(axis=1) if task == "multiclass" else ~np.isnan(targets[:, c])
        ref = brier_score_loss(targets[keep, c], probs[keep, c])
        assert summary["brier_per_class"][name] == pytest.approx(ref, abs=1e-12)
        expected.append(ref)
    assert summary["brier"] == pytest.approx(np.mean(expected), abs=1e-12)
    np.testing.assert_allclose(brier_scores(probs, targets, task), expected, atol=1e-12)

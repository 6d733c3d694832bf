"""Conformal kernels: against MAPIE 1.6 on the same scores, hand cases, and coverage on
exchangeable synthetic data within the binomial CI."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.metrics.conformal import (
    binomial_ci,
    calibrate_crc,
    calibrate_sets,
    calibrate_triage,
    conformal_quantile,
    crc_summary,
    image_fnr,
    predict_sets,
    set_summary,
    triage_bins,
    triage_summary,
)


def _dirichlet_task(n: int, k: int, seed: int):
    """Exchangeable (probs, y): y drawn from the probabilities themselves (calibrated model)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.7), size=n)
    return p, _draw(p, rng)


def _draw(p, rng):
    """One class per row, drawn with the row's probabilities."""
    return np.minimum((rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)


class _Prefit:
    """A prefit classifier for MAPIE whose 'features' are the row indices of fixed probabilities."""

    def __init__(self, probs, k):
        self.probs, self.classes_ = probs, np.arange(k)
        self.n_features_in_ = 1

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        return self.probs[np.asarray(X, int).ravel()]

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

    def __sklearn_is_fitted__(self):
        return True


def _mapie_sets(p_cal, y_cal, p_test, alpha, score, seed=0):
    from mapie.classification import SplitConformalClassifier

    probs = np.vstack([p_cal, p_test])
    est = _Prefit(probs, p_cal.shape[1])
    mapie = SplitConformalClassifier(
        estimator=est, confidence_level=1 - alpha, conformity_score=score, prefit=True, random_state=seed
    )
    mapie.conformalize(np.arange(len(p_cal))[:, None], y_cal)
    _, sets = mapie.predict_set(np.arange(len(p_cal), len(probs))[:, None])
    return sets[:, :, 0], float(mapie._mapie_classifier.conformity_score_function_.quantiles_[0])


def test_quantile_is_the_conformal_order_statistic():
    s = np.arange(1, 11) / 10.0  # n = 10
    assert conformal_quantile(s, 0.2) == 0.9  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(s, 0.5) == 0.6  # ceil(5.5) = 6th
    assert conformal_quantile(s, 0.05) == float("inf")  # ceil(10.45) = 11 > n


@pytest.mark.parametrize("score", ["lac", "aps"])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_sets_and_threshold_equal_mapie(score, alpha):
    p_cal, y_cal = _dirichlet_task(403, 4, 1)
    p_test, _ = _dirichlet_task(300, 4, 2)
    cal = calibrate_sets(p_cal, y_cal, alpha, score, seed=7)
    ours = predict_sets(p_test, cal)
    theirs, q = _mapie_sets(p_cal, y_cal, p_test, alpha, score, seed=7)
    assert cal.qhat[0] == pytest.approx(q, abs=1e-12)
    np.testing.assert_array_equal(ours, theirs)


def test_lac_hand_case():
    p_cal = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y_cal = np.array([0, 0, 1, 1])  # LAC scores 0.1, 0.2, 0.3, 0.6
    cal = calibrate_sets(p_cal, y_cal, alpha=0.4)  # ceil(5 * 0.6) = 3rd smallest = 0.3
    assert cal.qhat == (pytest.approx(0.3), pytest.approx(0.3))
    sets = predict_sets(np.array([[0.75, 0.25], [0.5, 0.5], [0.1, 0.9]]), cal)
    np.testing.assert_array_equal(sets, [[True, False], [False, False], [False, True]])


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("score", ["lac", "aps"])
def test_coverage_within_binomial_ci(alpha, score):
    """Averaged over 40 calibration/test splits of exchangeable data the coverage is >= 1 - alpha
    up to sampling noise: inside the 99% binomial interval of all pooled test cases."""
    hits = total = 0
    for seed in range(40):
        p, y = _dirichlet_task(400, 3, 100 + seed)
        cal = calibrate_sets(p[:200], y[:200], alpha, score, seed=seed)
        s = set_summary(predict_sets(p[200:], cal), y[200:])
        hits, total = hits + s["coverage"]["k"], total + s["coverage"]["n"]
    lo, hi = binomial_ci(hits, total, 0.99)
    if score == "lac":  # LAC is also at most 1 - alpha + 1/(n+1); APS with the last class kept
        assert lo <= 1 - alpha + 1 / 201  # (MAPIE's default) over-covers by design
    assert hi >= 1 - alpha  # not under-covering


def test_class_conditional_covers_every_class():
    rng = np.random.default_rng(3)
    hits = {0: [0, 0], 1: [0, 0], 2: [0, 0]}
    for seed in range(30):
        p, y = _dirichlet_task(600, 3, 500 + seed)
        # a rare class 2 the marginal sets would under-cover
        p[:, 2] *= 0.3
        p /= p.sum(axis=1, keepdims=True)
        y = _draw(p, rng)
        cal = calibrate_sets(p[:300], y[:300], 0.1, "lac", class_conditional=True)
        s = set_summary(predict_sets(p[300:], cal), y[300:])
        for c in range(3):
            hits[c][0] += s["coverage_by_class"][c]["k"]
            hits[c][1] += s["coverage_by_class"][c]["n"]
    for c, (k, n) in hits.items():
        assert binomial_ci(k, n, 0.99)[1] >= 0.9, (c, k / n)
    # per class the threshold is that class's own quantile
    p, y = _dirichlet_task(200, 3, 9)
    cal = calibrate_sets(p, y, 0.1, "lac", class_conditional=True)
    assert cal.qhat[1] == conformal_quantile(1 - p[y == 1, 1], 0.1)


def test_triage_controls_fnr_and_fpr():
    fn = pos = fp = neg = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 500)
        p = 1 / (1 + np.exp(-(rng.normal(size=500) + 1.5 * (2 * y - 1))))
        cal = calibrate_triage(p[:250], y[:250], 0.1)
        s = triage_summary(triage_bins(p[250:], cal), y[250:])
        fn, pos = fn + s["fnr"]["k"], pos + s["fnr"]["n"]
        fp, neg = fp + s["fpr"]["k"], neg + s["fpr"]["n"]
    assert binomial_ci(fn, pos, 0.99)[0] <= 0.1
    assert binomial_ci(fp, neg, 0.99)[0] <= 0.1


def test_triage_bins_hand_case():
    # positives' p 0.3 0.8 0.9 0.7, negatives' p 0.1 0.2 0.6 0.4; alpha 0.2 -> ceil(5 * 0.8) = 4th:
    # q1 = 4th smallest of 1 - p = 0.7 (1 in the set when p >= 0.3), q0 = 0.6 (0 in when p <= 0.6)
    p = np.array([0.3, 0.8, 0.9, 0.7, 0.1, 0.2, 0.6, 0.4])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    cal = calibrate_triage(p, y, 0.2)
    bins = triage_bins(np.array([0.1, 0.45, 0.65, 0.3]), cal)
    assert list(bins) == ["negative", "refer", "positive", "refer"]
    s = triage_summary(bins, np.array([0, 1, 0, 1]))
    assert s["fpr"]["k"] == 1 and s["fpr"]["n"] == 2
    assert s["npv"]["value"] == 1.0 and s["share_referred"]["k"] == 2
    # separable calibration (positives 0.6..0.9, negatives 0.1..0.4): 0.5 has an empty set and is
    # called at the operating threshold, which keeps both guarantees
    sep = calibrate_triage(np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4]), y, 0.2)
    assert list(triage_bins(np.array([0.5]), sep, threshold=0.55)) == ["negative"]
    assert list(triage_bins(np.array([0.5]), sep, threshold=0.45)) == ["positive"]


def test_crc_hand_case():
    # 3 images, B = 1, alpha 0.5: bound = 0.5 * 4 - 1 = 1 lost positive-share in total
    probs = np.array([[0.9, 0.2], [0.6, 0.1], [0.3, 0.8]])
    targets = np.array([[1, 1], [1, 0], [0, 1]])
    cal = calibrate_crc(probs, targets, alpha=0.5)
    # thresholds passing 0.9, 0.8, 0.6 leave losses 2.5, 1.5, 0.5 -> first <= 1 is at p = 0.6
    assert cal.threshold == pytest.approx(0.6)
    called = probs >= cal.threshold
    np.testing.assert_allclose(image_fnr(called, targets), [0.5, 0.0, 0.0])


def test_crc_fnr_at_most_alpha_on_average():
    rng = np.random.default_rng(0)
    fnrs = []
    for _ in range(60):
        t = (rng.random((400, 5)) < 0.3).astype(float)
        p = 1 / (1 + np.exp(-(rng.normal(size=t.shape) + 2 * (2 * t - 1) * 0.7)))
        cal = calibrate_crc(p[:200], t[:200], 0.1)
        fnrs.append(crc_summary(p[200:] >= cal.threshold, t[200:], n_boot=0)["fnr"]["value"])
    mean, se = np.mean(fnrs), np.std(fnrs) / np.sqrt(len(fnrs))
    assert mean <= 0.1 + 3 * se
    assert mean >= 0.05  # and not trivially 0: the threshold is not just 0


def test_unknown_labels_are_not_positives():
    targets = np.array([[np.nan, 1.0], [np.nan, np.nan]])
    fnr = image_fnr(np.array([[False, True], [False, False]]), targets)
    assert fnr[0] == 0.0 and np.isnan(fnr[1])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="alpha"):
        calibrate_sets(np.full((3, 2), 0.5), np.array([0, 1, 0]), alpha=1.5)
    with pytest.raises(ValueError, match="both classes"):
        calibrate_triage(np.array([0.2, 0.3]), np.array([0, 0]))
    with pytest.raises(ValueError, match="class indices"):
        calibrate_sets(np.full((2, 2), 0.5), np.array([0, 2]))


def test_crc_threshold_agrees_with_mapie_on_a_fine_grid():
    """MAPIE's MultiLabelClassificationController (recall, crc) searches a grid and calls p > lambda;
    the exact threshold (call p >= t) lies in the grid step just above MAPIE's lambda."""
    from mapie.risk_control import MultiLabelClassificationController

    rng = np.random.default_rng(0)
    t = (rng.random((300, 5)) < 0.3).astype(int)
    t[t.sum(axis=1) == 0, 0] = 1  # MAPIE requires a positive label in every calibration image
    p = 1 / (1 + np.exp(-(rng.normal(size=t.shape) + 1.4 * (2 * t - 1))))
    grid = np.round(np.arange(0, 1, 0.001), 3)
    mapie = MultiLabelClassificationController(
        predict_function=lambda x: p[np.asarray(x, int).ravel()], target_level=0.9, method="crc",
        risk="recall", predict_params=grid,
    )  # fmt: skip
    mapie.calibrate(np.arange(len(p))[:, None], t)
    lam = float(np.ravel(mapie.best_predict_param)[0])
    assert lam < calibrate_crc(p, t, 0.1).threshold <= lam + 0.001 + 1e-12

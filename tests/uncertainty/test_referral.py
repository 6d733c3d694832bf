"""Referral curves and risk-coverage over arrays, where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.uncertainty.referral import (
    BASELINES,
    FRACTIONS,
    referral_analysis,
    referral_curve,
    referral_for_target,
    retained_mask,
)
from chestxai.uncertainty.risk_coverage import augrc, aurc, decision_loss, risk_coverage_curve


def noisy_half(n: int = 400, seed: int = 0):
    """Binary task: the first half of the images is noisy (its probabilities often wrong, its
    uncertainty high), the second half clean; each patient has two images."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    noisy = np.arange(n) < n // 2
    logit = np.where(y == 1, 2.0, -2.0) + rng.normal(0, np.where(noisy, 3.0, 0.5))
    p = 1 / (1 + np.exp(-logit))
    unc = np.where(noisy, 1.0, 0.0) + 0.1 * rng.random(n)
    patients = np.repeat(np.arange(n // 2), 2).astype(str)
    return p[:, None], y[:, None], unc, patients


@pytest.fixture(scope="module")
def analysis():
    p, y, unc, patients = noisy_half()
    return referral_analysis(p, {"std": unc}, y, "binary", [0.5], patient_ids=patients, n_boot=300, seed=0)


def test_json_shape(analysis):
    assert set(analysis) == {"referral", "aurc", "augrc"}
    assert set(analysis["referral"]) == {"std", "random", "confidence", "softmax", "oracle"}
    assert set(analysis["referral"]) - {"std"} == set(BASELINES)  # what uncertainty.json lists as baselines
    for rows in analysis["referral"].values():
        assert [r["fraction"] for r in rows] == list(FRACTIONS) and rows[0]["fraction"] == 0.0
        for r in rows:
            assert {"fraction", "roc_auc", "accuracy", "sensitivity", "specificity", "ci"} <= set(r)
            assert set(r["ci"]) == {"roc_auc", "accuracy", "sensitivity", "specificity"}
    assert set(analysis["aurc"]) == set(analysis["augrc"]) == set(analysis["referral"])


def test_oracle_dominates_every_ranking(analysis):
    ref = analysis["referral"]
    for name in ("std", "random", "confidence", "softmax"):
        for o, r in zip(ref["oracle"], ref[name], strict=True):
            assert o["accuracy"] >= r["accuracy"] - 1e-12, (name, o["fraction"])
            assert o["roc_auc"] >= r["roc_auc"] - 1e-12, (name, o["fraction"])
    assert analysis["aurc"]["oracle"] <= min(analysis["aurc"].values())


def test_random_referral_is_flat_within_its_ci(analysis):
    rows = analysis["referral"]["random"]
    start = rows[0]
    for r in rows[1:]:
        for key in ("roc_auc", "accuracy"):
            lo, hi = r["ci"][key]
            assert lo <= start[key] <= hi, (key, r["fraction"])


def test_the_noisy_half_is_referred_first_and_that_helps(analysis):
    p, y, unc, _ = noisy_half()
    assert not retained_mask(unc, 0.5)[:200].any()  # referring 50% removes exactly the noisy half
    std = {r["fraction"]: r for r in analysis["referral"]["std"]}
    rnd = {r["fraction"]: r for r in analysis["referral"]["random"]}
    assert std[0.5]["roc_auc"] > rnd[0.5]["ci"]["roc_auc"][1]
    assert std[0.5]["n_retained"] == 200


def test_point_estimates_do_not_depend_on_the_bootstrap():
    p, y, unc, patients = noisy_half(120)
    a = referral_curve(p, unc, y, "binary", [0.5], n_boot=0)
    b = referral_curve(p, unc, y, "binary", [0.5], patient_ids=patients, n_boot=50)
    assert [r["roc_auc"] for r in a] == [r["roc_auc"] for r in b]
    with pytest.raises(ValueError, match="uncertainty scores"):
        referral_curve(p, unc[:-1], y)


def test_risk_coverage_definitions_on_a_hand_example():
    u = np.array([0.1, 0.2, 0.3, 0.4])
    loss = np.array([0.0, 1.0, 0.0, 1.0])  # accepted in this order
    c = risk_coverage_curve(u, loss)
    assert c["selective_risk"].tolist() == [0.0, 0.5, 1 / 3, 0.5]
    assert c["generalized_risk"].tolist() == [0.0, 0.25, 0.25, 0.5]
    assert aurc(u, loss) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    # trapezoid through (0, 0): (0 + 0)/2 + (0 + .25)/2 + (.25 + .25)/2 + (.25 + .5)/2, times 1/4
    assert augrc(u, loss) == pytest.approx(0.1875)
    assert aurc(-u, loss) != aurc(u, loss)


def _augrc_from_the_definition(u: np.ndarray, loss: np.ndarray) -> float:
    """Traub et al. 2024: AUGRC = area under the generalized risk P(accepted and wrong) as a function of
    coverage P(accepted), thresholding the uncertainty at each distinct value, from (0, 0), trapezoids."""
    cov, risk = [0.0], [0.0]
    for t in np.unique(u):
        accepted = u <= t
        cov.append(accepted.mean())
        risk.append(loss[accepted].sum() / len(u))
    c, r = np.array(cov), np.array(risk)
    return float(np.sum((c[1:] - c[:-1]) * (r[1:] + r[:-1]) / 2))


def test_augrc_matches_the_reference_definition_not_the_mean_of_the_curve():
    """Issue 20 item 15: the old mean of g(k) exceeded Traub et al.'s (fd-shifts) AUGRC by error_rate/(2n)."""
    rng = np.random.default_rng(0)
    u, loss = rng.random(37), (rng.random(37) < 0.3).astype(float)
    g = risk_coverage_curve(u, loss)["generalized_risk"]
    assert augrc(u, loss) == pytest.approx(_augrc_from_the_definition(u, loss), abs=1e-15)
    assert augrc(u, loss) == pytest.approx(g.mean() - loss.mean() / (2 * len(u)), abs=1e-15)
    tied = np.round(u, 1)  # ties: a tie group is accepted together, so the input order does not matter
    assert augrc(tied, loss) == pytest.approx(_augrc_from_the_definition(tied, loss), abs=1e-15)
    flip = np.arange(len(u))[::-1]
    assert augrc(tied[flip], loss[flip]) == pytest.approx(augrc(tied, loss), abs=1e-15)
    assert augrc(np.zeros(2), np.array([1.0, 0.0])) == pytest.approx(0.25)  # one group: (0,0) -> (1, 0.5)


def test_decision_loss_counts_wrong_known_labels():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    y = np.array([[1.0, 1.0], [np.nan, 1.0]])
    assert decision_loss(p, y, "multilabel", np.array([0.5, 0.5])).tolist() == [0.5, 0.0]


def test_referral_for_a_target_is_chosen_on_val_and_applied_to_test():
    p, y, unc, _ = noisy_half(400, seed=1)
    tp, ty, tunc, _ = noisy_half(400, seed=2)
    out = referral_for_target(p, unc, y, tp, tunc, ty, "binary", [0.5], sensitivity=0.9, specificity=0.9)
    assert out["reached_on_val"] and 0 < out["val_fraction"] <= 0.5
    assert out["test"]["sensitivity"] >= 0.85 and 0 < out["test_fraction"] <= 0.6
    never = referral_for_target(p, unc, y, tp, tunc, ty, "binary", [0.5], sensitivity=1.01)
    assert never["reached_on_val"] is False

"""Referral analysis: refer the most uncertain cases to a radiologist; how good is what is left?

:func:`referral_curve` refers the ``f`` most uncertain share of images (``round(f * n)``, ties
in input order) and scores the retained images: macro ROC-AUC over labels, accuracy (micro over
decisions; top-1 for multi-class), sensitivity and specificity (macro recall / specificity) at
the operating thresholds. Confidence intervals come from the patient-clustered bootstrap of
:mod:`chestxai.metrics.bootstrap`: a replicate resamples patients, and the retained set is the
one the ranking chose on the observed data (the referral rule is fixed, its outcome resampled).

:func:`referral_analysis` puts the method's rankings beside four baselines on the same axes,
always scoring the same (averaged) probabilities so only the ranking differs:

* ``random``: a seeded random order (what any ranking must beat);
* ``confidence``: the plain model's confidence, the distance of its ``p`` from the threshold;
* ``softmax``: the softmax baseline of Bernhardt et al. 2022 on the plain model, ``1 - max p``
  (multi-class) or the distance of ``p`` from 0.5 (:func:`~.measures.softmax_uncertainty`);
* ``oracle``: the errors first (most wrong labels first, then least confident), the upper bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chestxai.metrics.bootstrap import bootstrap_samples, percentile_interval, resample_weights
from chestxai.metrics.task_rules import check_arrays
from chestxai.uncertainty.measures import confidence_uncertainty, softmax_uncertainty
from chestxai.uncertainty.risk_coverage import augrc, aurc, decision_loss

#: referred shares reported by default: 0, 5, ..., 50%
FRACTIONS = tuple(round(0.05 * i, 2) for i in range(11))
METRIC_KEYS = ("roc_auc", "accuracy", "sensitivity", "specificity")
#: replicates x images held per bootstrap call (memory bound, ~16 MB of float64 per array)
_MAX_ENTRIES = 2_000_000


def retained_mask(uncertainty: np.ndarray, fraction: float) -> np.ndarray:
    """Bool per image: kept after referring the ``round(fraction * n)`` most uncertain."""
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"referral fractions must be in [0, 1), got {fraction}")
    n_refer = int(round(float(fraction) * len(u)))
    keep = np.ones(len(u), dtype=bool)
    keep[np.argsort(-u, kind="stable")[:n_refer]] = False
    return keep


def _summary(samples: dict, task: str) -> dict[str, np.ndarray]:
    """The four referral metrics out of :func:`bootstrap_samples`' nested output."""
    accuracy = samples["overall"]["accuracy"] if task == "multiclass" else samples["micro"]["accuracy"]
    return {
        "roc_auc": samples["macro"]["roc_auc"],
        "accuracy": accuracy,
        "sensitivity": samples["macro"]["recall"],
        "specificity": samples["macro"]["specificity"],
    }


def _scores(probs, targets, task, thresholds, weights: np.ndarray) -> dict[str, np.ndarray]:
    names = [f"c{i}" for i in range(probs.shape[1])]
    out: dict[str, list] = {k: [] for k in METRIC_KEYS}
    step = max(1, _MAX_ENTRIES // max(probs.size * 2, 1))
    for start in range(0, len(weights), step):
        s = bootstrap_samples(probs, targets, task, names, thresholds, weights=weights[start : start + step])
        for k, v in _summary(s, task).items():
            out[k].append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def referral_curve(
    probs_mean: np.ndarray,
    uncertainty: np.ndarray,
    targets: np.ndarray,
    task: str = "binary",
    thresholds: np.ndarray | Sequence[float] | None = None,
    fractions: Sequence[float] = FRACTIONS,
    patient_ids: np.ndarray | Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    boot_weights: np.ndarray | None = None,
) -> list[dict]:
    """One row per referred ``fraction`` (0 first): ``{"fraction", "n_retained", "roc_auc",
    "accuracy", "sensitivity", "specificity", "ci": {metric: [lo, hi]}}``.

    ``uncertainty``: one score per image, higher = refer first. ``boot_weights`` (``n_boot x n``)
    reuses one set of bootstrap replicates across rankings (paired comparisons); by default they
    are drawn from ``patient_ids`` with ``seed``.
    """
    probs, targets = check_arrays(probs_mean, targets, task)
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    if len(u) != len(probs):
        raise ValueError(f"{len(u)} uncertainty scores for {len(probs)} images")
    th = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    fractions = sorted(float(f) for f in fractions)
    if fractions[0] != 0.0:
        fractions = [0.0, *fractions]
    if boot_weights is None:
        boot_weights = (
            np.concatenate(list(resample_weights(len(probs), patient_ids, n_boot, seed))) if n_boot else None
        )
    rows = []
    for f in fractions:
        keep = retained_mask(u, f).astype(np.float64)
        point = _scores(probs, targets, task, th, keep[None, :])
        row: dict = {"fraction": f, "n_retained": int(keep.sum())}
        row.update({k: float(point[k][0]) for k in METRIC_KEYS})
        if boot_weights is not None and len(boot_weights):
            reps = _scores(probs, targets, task, th, boot_weights * keep[None, :])
            row["ci"] = {k: list(percentile_interval(reps[k], level)) for k in METRIC_KEYS}
        else:
            row["ci"] = {k: [float("nan"), float("nan")] for k in METRIC_KEYS}
        rows.append(row)
    return rows


def oracle_uncertainty(probs: np.ndarray, targets: np.ndarray, task: str, thresholds=None) -> np.ndarray:
    """Scores that put the errors first (most wrong labels first), then the least confident."""
    loss = np.nan_to_num(decision_loss(probs, targets, task, thresholds), nan=-1.0)
    conf = confidence_uncertainty(probs, thresholds, task)
    order = np.lexsort((-conf, -loss))  # refer first: highest loss, then least confident
    scores = np.empty(len(order))
    scores[order] = np.arange(len(order), 0, -1, dtype=np.float64)
    return scores


#: the rankings every method's referral is shown beside (:func:`baseline_rankings`' keys)
BASELINES = ("random", "confidence", "softmax", "oracle")


def baseline_rankings(
    probs_mean: np.ndarray,
    targets: np.ndarray,
    task: str,
    thresholds=None,
    confidence_probs: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``random``, ``confidence`` and ``softmax`` (of ``confidence_probs``, the plain model; default
    the mean) and ``oracle``."""
    n = len(probs_mean)
    conf_p = probs_mean if confidence_probs is None else confidence_probs
    return {
        "random": np.random.default_rng(seed).permutation(n).astype(np.float64),
        "confidence": confidence_uncertainty(conf_p, thresholds, task),
        "softmax": softmax_uncertainty(conf_p, task),
        "oracle": oracle_uncertainty(probs_mean, targets, task, thresholds),
    }


def referral_analysis(
    probs_mean: np.ndarray,
    rankings: Mapping[str, np.ndarray],
    targets: np.ndarray,
    task: str = "binary",
    thresholds=None,
    *,
    confidence_probs: np.ndarray | None = None,
    fractions: Sequence[float] = FRACTIONS,
    patient_ids=None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """``{"referral": {ranking: rows}, "aurc": {ranking: v}, "augrc": {ranking: v}}`` for the
    method's ``rankings`` (measure name -> per-image uncertainty) plus the four baselines, all
    scored with the same bootstrap replicates."""
    probs, targets = check_arrays(probs_mean, targets, task)
    all_rankings = {**{k: np.asarray(v, np.float64) for k, v in rankings.items()}}
    all_rankings.update(baseline_rankings(probs, targets, task, thresholds, confidence_probs, seed))
    weights = (
        np.concatenate(list(resample_weights(len(probs), patient_ids, n_boot, seed))) if n_boot else None
    )
    loss = decision_loss(probs, targets, task, thresholds)
    out: dict = {"referral": {}, "aurc": {}, "augrc": {}}
    for name, u in all_rankings.items():
        out["referral"][name] = referral_curve(
            probs, u, targets, task, thresholds, fractions, n_boot=n_boot, level=level, boot_weights=weights
        )
        out["aurc"][name] = aurc(u, loss)
        out["augrc"][name] = augrc(u, loss)
    return out


def referral_for_target(
    val_probs: np.ndarray,
    val_uncertainty: np.ndarray,
    val_targets: np.ndarray,
    test_probs: np.ndarray,
    test_uncertainty: np.ndarray,
    test_targets: np.ndarray,
    task: str = "binary",
    thresholds=None,
    sensitivity: float = 0.95,
    specificity: float = 0.90,
    max_fraction: float = 0.5,
) -> dict:
    """The smallest share to refer (1% steps up to ``max_fraction``) for the retained val images to
    reach ``sensitivity`` and ``specificity``; its uncertainty cut-off is then applied to test
    (refer ``uncertainty > cutoff``) and what test achieves is reported."""
    vp, vt = check_arrays(val_probs, val_targets, task)
    vu = np.asarray(val_uncertainty, np.float64)
    th = None if thresholds is None else np.asarray(thresholds, np.float64)
    target = {"sensitivity": sensitivity, "specificity": specificity}
    for step in range(int(round(max_fraction * 100)) + 1):
        f = step / 100
        keep = retained_mask(vu, f)
        s = _scores(vp, vt, task, th, keep[None, :].astype(np.float64))
        if s["sensitivity"][0] >= sensitivity and s["specificity"][0] >= specificity:
            kept = vu[keep]
            cutoff = float(kept.max()) if keep.any() else float("-inf")
            tp, tt = check_arrays(test_probs, test_targets, task)
            tu = np.asarray(test_uncertainty, np.float64)
            tkeep = tu <= cutoff
            ts = _scores(tp, tt, task, th, tkeep[None, :].astype(np.float64))
            return {
                "target": target,
                "reached_on_val": True,
                "val_fraction": f,
                "cutoff": cutoff,
                "test_fraction": float(1.0 - tkeep.mean()) if len(tu) else float("nan"),
                "test": {k: float(v[0]) for k, v in ts.items()},
            }
    return {"target": target, "reached_on_val": False, "max_fraction": max_fraction}

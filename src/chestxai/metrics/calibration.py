"""Calibration: does a predicted 0.8 come true 80% of the time? ECE, Brier score, NLL,
reliability curves, and temperature scaling fitted on validation.

What is binned depends on the task:

* binary / multi-label: the probability of the positive class against the observed frequency of
  the finding (per class, and pooled over classes for one reliability diagram);
* multi-class: the top-label confidence (max softmax) against whether the argmax was right.

Temperature scaling divides the logits by one scalar ``T`` fitted to minimise the validation
negative log-likelihood. It changes confidence, not ranking (AUC) nor the argmax. Logits are
recovered from stored probabilities: ``logit(p)`` for sigmoid outputs, ``log p`` for softmax (a
softmax is unchanged by the constant that ``log p`` loses).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from chestxai.metrics.task_rules import check_arrays, valid_mask

_EPS = 1e-7


def reliability_curve(probs: np.ndarray, outcomes: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    """Equal-width bins over [0, 1] (``[lo, hi)``, the last one closed): per bin the count, mean
    predicted probability and observed frequency (NaN for empty bins)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    o = np.asarray(outcomes, dtype=np.float64).ravel()
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        freq = np.bincount(idx, weights=o, minlength=n_bins) / count
    return {
        "bin_edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "count": count.astype(int).tolist(),
        "mean_predicted": mean_p.tolist(),
        "observed_frequency": freq.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, outcomes: np.ndarray, n_bins: int = 10) -> float:
    """ECE = sum over bins of (bin share) x |observed frequency - mean predicted probability|."""
    curve = reliability_curve(probs, outcomes, n_bins)
    count = np.asarray(curve["count"], dtype=np.float64)
    if count.sum() == 0:
        return float("nan")
    gap = np.abs(np.asarray(curve["observed_frequency"]) - np.asarray(curve["mean_predicted"]))
    return float(np.nansum(count / count.sum() * gap))


def calibration_pairs(probs: np.ndarray, targets: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """The (predicted probability, 0/1 outcome) pairs that calibration bins, pooled over classes."""
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    if task == "multiclass":
        rows = known[:, 0]
        p = probs[rows]
        return p.max(axis=1), (p.argmax(axis=1) == targets[rows].argmax(axis=1)).astype(np.float64)
    return probs[known], targets[known]


def to_logits(probs: np.ndarray, task: str) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) if task == "multiclass" else np.log(p) - np.log1p(-p)


def from_logits(logits: np.ndarray, task: str) -> np.ndarray:
    if task == "multiclass":
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-logits))


def apply_temperature(probs: np.ndarray, temperature: float, task: str) -> np.ndarray:
    """Probabilities after dividing the logits by ``temperature``."""
    return from_logits(to_logits(probs, task) / float(temperature), task)


def negative_log_likelihood(probs: np.ndarray, targets: np.ndarray, task: str) -> float:
    """Mean NLL over known targets: cross-entropy per image (multi-class) or per (image, class)."""
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    p = np.clip(probs, _EPS, 1.0 - _EPS)
    if task == "multiclass":
        rows = known[:, 0]
        if not rows.any():
            return float("nan")
        return float(-np.mean(np.log(p[rows][np.arange(rows.sum()), targets[rows].argmax(axis=1)])))
    y = targets[known]
    if y.size == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p[known]) + (1.0 - y) * np.log1p(-p[known])))


def brier_scores(probs: np.ndarray, targets: np.ndarray, task: str) -> np.ndarray:
    """Brier score per class: mean squared gap between the probability and the 0/1 target.

    Over each class's known targets (a multi-class row counts only when fully known). For
    multi-class this is the one-vs-rest score of each class's softmax column, equal to
    ``sklearn.metrics.brier_score_loss(y == c, p[:, c])``; their sum is the multi-class Brier
    score of Brier (1950). NaN for a class without known targets.
    """
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    sq = np.where(known, (probs - np.nan_to_num(targets)) ** 2, 0.0)
    n = known.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sq.sum(axis=0) / np.maximum(n, 1), np.nan)


def fit_temperature(probs: np.ndarray, targets: np.ndarray, task: str) -> float:
    """The scalar ``T`` in [e^-4, e^4] minimising NLL of ``apply_temperature(probs, T)`` (validation data)."""
    probs, targets = check_arrays(probs, targets, task)

    def loss(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probs, np.exp(log_t), task), targets, task)

    res = minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def calibration_summary(
    probs: np.ndarray, targets: np.ndarray, task: str, label_names: list[str], n_bins: int = 10
) -> dict:
    """ECE (pooled, and per class for sigmoid tasks), NLL, Brier score (per class and their
    unweighted mean, ``brier``) and the pooled reliability curve."""
    probs, targets = check_arrays(probs, targets, task)
    p, o = calibration_pairs(probs, targets, task)
    brier = brier_scores(probs, targets, task)
    defined = brier[~np.isnan(brier)]
    out = {
        "ece": expected_calibration_error(p, o, n_bins),
        "nll": negative_log_likelihood(probs, targets, task),
        "brier": float(defined.mean()) if defined.size else float("nan"),
        "brier_per_class": {name: float(b) for name, b in zip(label_names, brier, strict=True)},
        "reliability": reliability_curve(p, o, n_bins),
        "binned": "top-label confidence" if task == "multiclass" else "positive-class probability",
    }
    if task != "multiclass":
        known = valid_mask(targets, task)
        out["ece_per_class"] = {
            name: expected_calibration_error(probs[known[:, c], c], targets[known[:, c], c], n_bins)
            for c, name in enumerate(label_names)
        }
    return out

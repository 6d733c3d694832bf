"""Classification metrics per class and averaged (macro, micro, weighted): point estimates.

Pure functions over arrays (see :mod:`chestxai.metrics.task_rules` for the task rules). Point
estimates come from scikit-learn (confusion matrix, ROC-AUC, average precision); the bootstrap
(:mod:`chestxai.metrics.bootstrap`) recomputes the same quantities with vectorised kernels.

Averages:

* ``macro``: unweighted mean over classes where the metric is defined;
* ``weighted``: mean weighted by each class's number of positives (scikit-learn's "weighted");
* ``micro``: from the confusion counts summed over classes, and ROC-AUC / AP over all
  (image, class) pairs pooled.

A class with no positives (or no negatives) in the evaluated split gets NaN ROC-AUC and AP and a
:class:`MetricWarning`, never an exception: small test splits of rare findings are normal.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    roc_auc_score,
)

from chestxai.metrics.decisions import decide
from chestxai.metrics.task_rules import check_arrays, valid_mask

log = logging.getLogger(__name__)

THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "specificity", "f1")
RANK_METRICS = ("roc_auc", "average_precision")
METRICS = THRESHOLD_METRICS + RANK_METRICS
AVERAGES = ("macro", "micro", "weighted")


class MetricWarning(UserWarning):
    """A metric is undefined for this data (e.g. a class absent from the test split)."""


#: the macro summary a run is shown by (comparison tables, the service's model card)
SUMMARY_METRICS = (
    "roc_auc",
    "average_precision",
    "f1",
    "recall",
    "specificity",
    "accuracy",
    "balanced_accuracy",
)


def _div(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def counts_metrics(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    """Threshold metrics from confusion counts (scalars or arrays); NaN where a ratio is 0/0.

    Recall is sensitivity; specificity is the recall of the negative class.
    """
    tp, fp, tn, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, tn, fn))
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    specificity = _div(tn, tn + fp)
    return {
        "accuracy": _div(tp + tn, tp + tn + fp + fn),
        "balanced_accuracy": (recall + specificity) / 2.0,
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": _div(2.0 * tp, 2.0 * tp + fp + fn),
    }


def rank_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC-AUC and average precision via scikit-learn; NaN (no exception) when undefined."""
    y = np.asarray(y, dtype=np.float64)
    n_pos = int((y == 1).sum())
    auc = roc_auc_score(y, scores) if 0 < n_pos < len(y) else np.nan
    ap = average_precision_score(y, scores) if n_pos > 0 else np.nan
    return {"roc_auc": float(auc), "average_precision": float(ap)}


def _warn_undefined(name: str, n_pos: int, n: int) -> None:
    missing = "positive" if n_pos == 0 else "negative"
    msg = f"class {name!r} has no {missing} examples among {n} evaluated images: its ROC-AUC is NaN" + (
        " and so is its average precision" if n_pos == 0 else ""
    )
    log.warning(msg)
    warnings.warn(msg, MetricWarning, stacklevel=3)


def weighted_mean(values: np.ndarray, weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of ``values`` over ``axis`` with ``weights``, ignoring NaN values; NaN if nothing left."""
    values = np.asarray(values, dtype=np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), values.shape)
    ok = ~np.isnan(values) & (w > 0)
    num = np.where(ok, values * w, 0.0).sum(axis=axis)
    den = np.where(ok, w, 0.0).sum(axis=axis)
    return _div(num, den)


def classification_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    thresholds: np.ndarray | None = None,
) -> dict:
    """All point metrics: ``{"per_class": {label: {...}}, "macro": {...}, "micro": {...},
    "weighted": {...}, "overall": {...}}``.

    ``thresholds`` (one per class, default 0.5) turn probabilities into decisions except for
    multi-class, which uses the argmax. Per-class entries also hold ``n`` (known targets),
    ``n_pos`` and, for thresholded tasks, ``threshold``.
    """
    probs, targets = check_arrays(probs, targets, task)
    if len(label_names) != probs.shape[1]:
        raise ValueError(f"{len(label_names)} label names for {probs.shape[1]} probability columns")
    pred = decide(probs, task, thresholds).astype(np.float64)
    known = valid_mask(targets, task)
    per_class: dict[str, dict] = {}
    counts = np.zeros((len(label_names), 4))  # tp, fp, tn, fn
    for c, name in enumerate(label_names):
        m = known[:, c]
        y, s, d = targets[m, c], probs[m, c], pred[m, c]
        tn, fp, fn, tp = confusion_matrix(y, d, labels=[0, 1]).ravel()
        counts[c] = tp, fp, tn, fn
        entry = {k: float(v) for k, v in counts_metrics(tp, fp, tn, fn).items()}
        n_pos = int((y == 1).sum())
        if n_pos == 0 or n_pos == len(y):
            _warn_undefined(name, n_pos, len(y))
        entry.update(rank_metrics(y, s))
        entry.update(n=int(len(y)), n_pos=n_pos)
        if thresholds is not None and task != "multiclass":
            entry["threshold"] = float(thresholds[c])
        per_class[name] = entry

    n_pos = np.array([per_class[n]["n_pos"] for n in label_names], dtype=np.float64)
    table = np.array([[per_class[n][k] for k in METRICS] for n in label_names])  # L x M
    out: dict = {"per_class": per_class}
    out["macro"] = {k: float(v) for k, v in zip(METRICS, weighted_mean(table.T, 1.0), strict=True)}
    out["weighted"] = {k: float(v) for k, v in zip(METRICS, weighted_mean(table.T, n_pos), strict=True)}
    tp, fp, tn, fn = counts.sum(axis=0)
    micro = {k: float(v) for k, v in counts_metrics(tp, fp, tn, fn).items()}
    micro.update(rank_metrics(targets[known], probs[known]))
    out["micro"] = micro
    out["overall"] = overall_metrics(probs, targets, task, pred)
    return out


def overall_metrics(probs: np.ndarray, targets: np.ndarray, task: str, pred: np.ndarray) -> dict[str, float]:
    """Whole-image metrics over images whose targets are all known: multi-class top-1 accuracy
    and balanced accuracy (mean per-class recall); multi-label exact-match (subset) accuracy."""
    rows = ~np.isnan(targets).any(axis=1)
    n = int(rows.sum())
    if task == "binary" or n == 0:
        return {"n": n}
    if task == "multilabel":
        return {"exact_match": float((pred[rows] == targets[rows]).all(axis=1).mean()), "n": n}
    y = targets[rows].argmax(axis=1)
    p = probs[rows].argmax(axis=1)
    with warnings.catch_warnings():  # a class absent from y is already reported per class
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y, p)
    return {"accuracy": float(accuracy_score(y, p)), "balanced_accuracy": float(balanced), "n": n}

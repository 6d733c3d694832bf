"""The numbers behind each figure (ROC, PR, threshold sweep, confusion, confidence), kept apart
from drawing so they can be tested, stored, or drawn by another tool."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from chestxai.metrics.classification import counts_metrics, rank_metrics
from chestxai.metrics.decisions import decide
from chestxai.metrics.task_rules import check_arrays, valid_mask


def _per_class(probs, targets, task):
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    for c in range(probs.shape[1]):
        m = known[:, c]
        yield c, probs[m, c], targets[m, c]


def roc_curves(probs: np.ndarray, targets: np.ndarray, task: str, label_names: list[str]) -> dict:
    """Per class ``{"fpr", "tpr", "thresholds", "auc"}``; ``None`` when the class lacks positives or negatives."""
    out: dict = {}
    for c, s, y in _per_class(probs, targets, task):
        if not 0 < (y == 1).sum() < len(y):
            out[label_names[c]] = None
            continue
        fpr, tpr, thr = roc_curve(y, s)
        out[label_names[c]] = {
            "fpr": fpr,
            "tpr": tpr,
            "thresholds": thr,
            "auc": rank_metrics(y, s)["roc_auc"],
        }
    return out


def pr_curves(probs: np.ndarray, targets: np.ndarray, task: str, label_names: list[str]) -> dict:
    """Per class ``{"precision", "recall", "ap", "prevalence"}``; ``None`` without positives."""
    out: dict = {}
    for c, s, y in _per_class(probs, targets, task):
        if not (y == 1).any():
            out[label_names[c]] = None
            continue
        precision, recall, _ = precision_recall_curve(y, s)
        out[label_names[c]] = {
            "precision": precision,
            "recall": recall,
            "ap": rank_metrics(y, s)["average_precision"],
            "prevalence": float(y.mean()),
        }
    return out


def threshold_sweep(scores: np.ndarray, y: np.ndarray, n_points: int = 101) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, precision and F1 at evenly spaced thresholds in [0, 1]."""
    t = np.linspace(0.0, 1.0, n_points)
    s = np.asarray(scores, dtype=np.float64)[None, :]
    y = np.asarray(y, dtype=np.float64)[None, :]
    pred = s >= t[:, None]
    tp = (pred * y).sum(axis=1)
    fp = (pred * (1 - y)).sum(axis=1)
    fn = (~pred * y).sum(axis=1)
    tn = (~pred * (1 - y)).sum(axis=1)
    m = counts_metrics(tp, fp, tn, fn)
    return {
        "threshold": t,
        "sensitivity": m["recall"],
        "specificity": m["specificity"],
        "precision": m["precision"],
        "f1": m["f1"],
    }


def threshold_sweeps(probs: np.ndarray, targets: np.ndarray, task: str, label_names: list[str]) -> dict:
    return {label_names[c]: threshold_sweep(s, y) for c, s, y in _per_class(probs, targets, task)}


def confusion_matrices(
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    thresholds: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Multi-class: one ``C x C`` matrix (rows = truth) under ``"all"``; otherwise a ``2 x 2``
    matrix ``[[tn, fp], [fn, tp]]`` per class at its threshold."""
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    if task == "multiclass":
        rows = known[:, 0]
        y, p = targets[rows].argmax(axis=1), probs[rows].argmax(axis=1)
        return {"all": confusion_matrix(y, p, labels=list(range(len(label_names))))}
    pred = decide(probs, task, thresholds).astype(np.float64)
    return {
        name: confusion_matrix(targets[known[:, c], c], pred[known[:, c], c], labels=[0, 1])
        for c, name in enumerate(label_names)
    }


def confidence_by_correctness(
    probs: np.ndarray, targets: np.ndarray, task: str, thresholds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence in each decision and whether it was right.

    Multi-class: the max probability and argmax == truth, per image. Sigmoid tasks: per known
    (image, class) pair, ``p`` for a positive decision and ``1 - p`` for a negative one.
    """
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    if task == "multiclass":
        rows = known[:, 0]
        p = probs[rows]
        return p.max(axis=1), p.argmax(axis=1) == targets[rows].argmax(axis=1)
    pred = decide(probs, task, thresholds).astype(np.float64)
    conf = np.where(pred == 1, probs, 1.0 - probs)
    return conf[known], (pred == targets)[known]

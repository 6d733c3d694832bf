"""How each task turns model probabilities into per-class yes/no problems and decisions.

Every metric in this package works on one ``(scores, targets, decisions)`` triple per class, so
the task-specific rules live here and nowhere else (the decision rule: :mod:`.decisions`):

* ``binary``: ``L == 1``; the column is the probability of the positive class.
* ``multilabel``: ``L`` independent sigmoids; a NaN target (unknown / uncertain) masks that one
  finding of that one image, the others still count.
* ``multiclass``: softmax rows, one-hot targets; a row with any NaN target is dropped as a whole.
  The decision is the argmax (a softmax model picks exactly one class), so per-class metrics
  are one-vs-rest views of that single decision; per-class thresholds are not used.

Turning probabilities into decisions is :func:`chestxai.metrics.decisions.decide`.
"""

from __future__ import annotations

import numpy as np

from chestxai.tasks import TASKS


def check_arrays(probs: np.ndarray, targets: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and return float64 ``N x L`` probabilities and targets."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if probs.ndim == 1:
        probs = probs[:, None]
    if targets.ndim == 1:
        targets = targets[:, None]
    if probs.shape != targets.shape:
        raise ValueError(f"probabilities {probs.shape} and targets {targets.shape} differ in shape")
    if task == "binary" and probs.shape[1] != 1:
        raise ValueError(
            f"a binary task has one probability column (the positive class), got {probs.shape[1]}"
        )
    if task == "multiclass" and probs.shape[1] < 2:
        raise ValueError("a multi-class task needs at least two probability columns")
    known = targets[~np.isnan(targets)]
    if known.size and not np.isin(known, (0.0, 1.0)).all():
        raise ValueError("targets must be 0, 1 or NaN (unknown)")
    return probs, targets


def valid_mask(targets: np.ndarray, task: str) -> np.ndarray:
    """``N x L`` bool: which (image, class) entries have a known target."""
    known = ~np.isnan(targets)
    if task == "multiclass":
        return np.repeat(known.all(axis=1, keepdims=True), targets.shape[1], axis=1)
    return known


def uses_thresholds(task: str) -> bool:
    """Whether per-class operating thresholds decide anything for this task (not for argmax)."""
    return task != "multiclass"

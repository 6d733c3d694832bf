"""Validation scores for model selection and early stopping, with the metric kernels' own definitions.

Every number here comes from :mod:`chestxai.metrics` (task rules, per-class ROC-AUC, NLL,
decisions), so the ``val_loss`` in ``history.csv`` is the NLL that ``evaluate`` reports on the
same images and probabilities, and ``val_auc`` is its macro ROC-AUC: one definition each.

Which score selects the best epoch: the macro ROC-AUC when it is defined (some class has both
positives and negatives in the validation split), else the validation loss. Which one applies is
fixed by the validation labels, so it is the same in every epoch of a run.
"""

from __future__ import annotations

import math

import numpy as np

from chestxai.metrics.calibration import negative_log_likelihood
from chestxai.metrics.classification import rank_metrics
from chestxai.metrics.decisions import decide
from chestxai.metrics.task_rules import check_arrays, valid_mask

MONITORS = ("val_auc", "val_loss")


def validation_scores(task: str, targets: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """``auc`` (macro over classes where defined, NaN if none), ``loss`` (mean NLL over known
    targets) and ``accuracy`` (top-1 for multi-class; over known (image, class) pairs at 0.5)."""
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    aucs = [
        rank_metrics(targets[known[:, c], c], probs[known[:, c], c])["roc_auc"] for c in range(probs.shape[1])
    ]
    defined = [a for a in aucs if not math.isnan(a)]
    pred = decide(probs, task)
    if task == "multiclass":
        rows = known[:, 0]
        hits = pred[rows].argmax(axis=1) == targets[rows].argmax(axis=1)
    else:
        hits = pred[known] == targets[known]
    return {
        "auc": float(np.mean(defined)) if defined else float("nan"),
        "loss": negative_log_likelihood(probs, targets, task),
        "accuracy": float(np.mean(hits)) if hits.size else float("nan"),
    }


def pick_monitor(scores: dict[str, float]) -> str:
    """``val_auc`` when the AUC is defined, else ``val_loss`` (see module docstring)."""
    return "val_auc" if not math.isnan(scores["auc"]) else "val_loss"


def selection_score(scores: dict[str, float], monitor: str) -> float:
    """Higher is better: the AUC, or minus the loss; NaN when undefined (never an improvement)."""
    return scores["auc"] if monitor == "val_auc" else -scores["loss"]


def improves(score: float, best: float, have_best: bool) -> bool:
    """Whether ``score`` beats ``best``. The first epoch always does, so a run always leaves a
    best checkpoint, even when every score is NaN (a diverged model)."""
    if not have_best:
        return True
    return not math.isnan(score) and (math.isnan(best) or score > best)

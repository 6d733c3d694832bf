"""Validation scores used for model selection and early stopping (AUC first, then loss).

Deliberately small: the full metric suite with confidence intervals is ``chestxai.evaluation``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import roc_auc_score


def validation_scores(task: str, targets: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Macro ROC-AUC over labels with both classes present, mean log-loss, accuracy at 0.5/argmax."""
    eps = 1e-7
    p = np.clip(probs.astype(np.float64), eps, 1 - eps)
    if task == "multiclass":
        known = ~np.isnan(targets).any(axis=1)
        y = targets[known].argmax(axis=1)
        p = p[known]
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y]))) if len(y) else float("nan")
        accuracy = float(np.mean(p.argmax(axis=1) == y)) if len(y) else float("nan")
        present = np.unique(y)
        if len(present) < 2:
            return {"auc": float("nan"), "loss": loss, "accuracy": accuracy}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(present) == p.shape[1]:
                auc = roc_auc_score(y, p / p.sum(1, keepdims=True), multi_class="ovr", average="macro")
            else:  # a class absent from val: average one-vs-rest over present classes
                auc = np.mean([roc_auc_score(y == c, p[:, c]) for c in present])
        return {"auc": float(auc), "loss": loss, "accuracy": accuracy}
    aucs, losses, correct, count = [], [], 0, 0
    for j in range(targets.shape[1]):
        known = ~np.isnan(targets[:, j])
        y, q = targets[known, j], p[known, j]
        if not len(y):
            continue
        losses.append(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
        correct += int(np.sum((q >= 0.5) == (y == 1)))
        count += len(y)
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, q))
    return {
        "auc": float(np.mean(aucs)) if aucs else float("nan"),
        "loss": float(np.mean(losses)) if losses else float("nan"),
        "accuracy": correct / count if count else float("nan"),
    }

"""Ensemble weights fitted on validation: the simplex weights that minimise validation log-loss,
and the weighted average of the members' probabilities that every ensemble predicts with.

Works from the members' ``predictions.csv`` (no model reloading, no GPU). Log-loss is a proper
scoring rule, smoother to optimise than AUC and less prone to overfitting a small validation
split than a search over AUC. Weights live on the simplex (non-negative, sum 1) through a
softmax parametrisation, so the average of probabilities stays a probability.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from chestxai.metrics.calibration import negative_log_likelihood as log_loss

log = logging.getLogger(__name__)


def weighted_average(probs: Sequence[np.ndarray], weights: np.ndarray | Sequence[float]) -> np.ndarray:
    """Probability-weighted average of ``K`` arrays ``N x L`` with ``K`` weights (softmax rows stay
    rows that sum to 1: the weights sum to 1)."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(stacked):
        raise ValueError(f"{len(weights)} weights for {len(stacked)} members")
    return np.tensordot(weights, stacked, axes=1)


@dataclass
class EnsembleFit:
    weights: np.ndarray
    val_log_loss: float
    member_val_log_loss: list[float]


def fit_weights(val_probs: list[np.ndarray], val_targets: np.ndarray, task: str) -> EnsembleFit:
    """Simplex weights minimising validation log-loss (softmax parametrisation, L-BFGS)."""
    k = len(val_probs)
    if k < 2:
        raise ValueError("an ensemble needs at least two members")
    members = [log_loss(p, val_targets, task) for p in val_probs]

    def objective(z: np.ndarray) -> float:
        w = np.exp(z - z.max())
        return log_loss(weighted_average(val_probs, w / w.sum()), val_targets, task)

    result = minimize(objective, np.zeros(k), method="L-BFGS-B")
    w = np.exp(result.x - result.x.max())
    w /= w.sum()
    return EnsembleFit(w, float(objective(result.x)), members)

"""Ensemble weights fitted on validation: the simplex weights that minimise validation log-loss.

Works from the members' ``predictions.csv`` (no model reloading, no GPU). Log-loss is a proper
scoring rule, smoother to optimise than AUC and less prone to overfitting a small validation
split than a search over AUC. Weights live on the simplex (non-negative, sum 1) through a
softmax parametrisation, so the average of probabilities stays a probability.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from chestxai.evaluation.calibration import negative_log_likelihood as log_loss
from chestxai.models.ensemble import weighted_average

log = logging.getLogger(__name__)


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

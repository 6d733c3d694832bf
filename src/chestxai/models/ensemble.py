"""Ensembles: weighted averaging of several runs' probabilities, weights fitted on validation.

Works from the runs' ``predictions.csv`` (written by ``chestxai evaluate``, val and test rows), so
combining models needs no model reloading and no GPU. Weights live on the simplex (non-negative,
sum 1) and minimise the validation log-loss - a proper scoring rule, smoother to optimise than AUC
and less prone to overfitting a small validation split than a search over AUC.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from chestxai.evaluation.calibration import negative_log_likelihood as log_loss

log = logging.getLogger(__name__)


def weighted_average(probs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Probability-weighted average of ``K`` arrays ``N x L`` with ``K`` weights."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    return np.tensordot(np.asarray(weights, dtype=np.float64), stacked, axes=1)


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

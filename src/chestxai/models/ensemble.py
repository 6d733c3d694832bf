"""Ensembles as models: the weighted average of several trained classifiers' probabilities.

Members keep their own preprocessing (input size, normalisation), so each predicts its own
input and only the probabilities are averaged. The weights are fitted on validation by
:mod:`chestxai.evaluation.ensemble` and stored in ``RUN/ensemble.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chestxai.models.predict import predict_probs


def weighted_average(probs: Sequence[np.ndarray], weights: np.ndarray | Sequence[float]) -> np.ndarray:
    """Probability-weighted average of ``K`` arrays ``N x L`` with ``K`` weights (softmax rows stay
    rows that sum to 1: the weights sum to 1)."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(stacked):
        raise ValueError(f"{len(weights)} weights for {len(stacked)} members")
    return np.tensordot(weights, stacked, axes=1)


@dataclass
class EnsembleMember:
    model: object  # a ChestClassifier in eval mode
    preprocess: dict
    weight: float


def predict_ensemble(
    members: Sequence[EnsembleMember],
    images,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Each member predicts ``images`` with its own preprocessing; the probabilities are averaged."""
    probs = [
        predict_probs(m.model, images, m.preprocess, batch_size=batch_size, device=device, progress=progress)
        for m in members
    ]
    return weighted_average(probs, [m.weight for m in members]).astype(np.float32)

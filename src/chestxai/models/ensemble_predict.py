"""Ensembles as models: the weighted average of several trained classifiers' probabilities.

Members keep their own preprocessing (input size, normalisation), so each predicts its own
input and only the probabilities are averaged, with
:func:`chestxai.metrics.ensemble_weights.weighted_average`: the same average the weights in
``RUN/ensemble.json`` were fitted with on validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chestxai.metrics.ensemble_weights import weighted_average
from chestxai.models.predict import predict_probs


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

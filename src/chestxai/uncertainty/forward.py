"""The plain forwards every sampler shares: the deterministic prediction and each ensemble
member's input.

Kept apart from :mod:`.api` so the method modules (:mod:`.methods`) and the heatmaps can use them
without importing the entry point that looks the methods up (no cycle inside the package).
"""

from __future__ import annotations

import numpy as np
import torch

from chestxai.uncertainty.tta import normalise, to_unit


@torch.inference_mode()
def deterministic(model, x: torch.Tensor) -> np.ndarray:
    """The plain eval-mode probabilities of ``model`` on ``x`` (its training flag is restored)."""
    was = model.training
    model.eval()
    try:
        return model.probabilities(model(x)).float().cpu().numpy()
    finally:
        model.train(was)


def member_inputs(x: torch.Tensor, preprocess, n: int) -> list[torch.Tensor]:
    """Each ensemble member's input: ``x`` (the first member's) renormalised with member ``k``'s
    mean/std when ``preprocess`` lists them, else ``x`` for all."""
    if preprocess is None or isinstance(preprocess, dict):
        return [x] * n
    if len(preprocess) != n:
        raise ValueError(f"{len(preprocess)} preprocess dicts for {n} ensemble members")
    unit = to_unit(x, preprocess[0])
    return [normalise(unit, p) for p in preprocess]

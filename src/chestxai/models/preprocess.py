"""Turn cached uint8 images into model input, exactly as the checkpoint says.

One function used by training, evaluation, explanation and serving, so that they cannot drift.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT = {"size": 224, "mean": 0.5, "std": 0.25}


def to_input(images: np.ndarray | torch.Tensor, preprocess: dict) -> torch.Tensor:
    """uint8 ``N x H x W`` (or float in [0,1]) -> float ``N x 1 x size x size`` normalised."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    size = int(preprocess["size"])
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - float(preprocess["mean"])) / float(preprocess["std"])

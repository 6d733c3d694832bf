"""Batched inference: probabilities for a set of cached images (no gradients)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from chestxai.models.classifier import ChestClassifier
from chestxai.models.preprocess import to_input


@torch.inference_mode()
def predict_probs(
    model: ChestClassifier,
    images: np.ndarray,
    preprocess: dict,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """``images``: uint8 ``N x H x W`` (e.g. ``cache.images[rows]``) -> float32 ``N x L`` probabilities."""
    model.eval()
    out = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="predict", disable=not progress, leave=False):
        x = to_input(np.asarray(images[start : start + batch_size]), preprocess).to(device)
        out.append(model.probabilities(model(x)).float().cpu().numpy())
    n_out = model.num_labels
    return np.concatenate(out) if out else np.zeros((0, n_out), np.float32)

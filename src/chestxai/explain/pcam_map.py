"""The PCAM head's own localisation: its per-finding probability map (Ye et al., 2020).

A PCAM head scores every location with a 1 x 1 classifier and pools features weighted by the
resulting probability map, so the map *is* the model's evidence, no attribution method needed.
Expressed as a ``BaseCAM`` subclass so it shares the hooks, resizing and batching of the others.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.base_cam import BaseCAM


class PCAMMap(BaseCAM):
    def __init__(self, model, target_layers, reshape_transform=None):
        super().__init__(model, target_layers, reshape_transform, uses_gradients=False)

    def get_cam_image(
        self, input_tensor, target_layer, targets, activations, grads, eigen_smooth
    ) -> np.ndarray:
        fmap = torch.as_tensor(activations, device=self.device)
        with torch.no_grad():
            maps = self.model.head.probability_maps(fmap)  # B x L x h x w
        rows = torch.arange(maps.shape[0])
        cols = torch.as_tensor([int(t.category) for t in targets])
        return maps[rows, cols].float().cpu().numpy()

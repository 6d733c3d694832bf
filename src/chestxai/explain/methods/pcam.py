"""The PCAM head's own localisation: its per-finding probability map (Ye et al., 2020).

A PCAM head scores every location with a 1 x 1 classifier and pools features weighted by the
resulting probability map, so the map *is* the model's evidence, no attribution method needed.
Expressed as a ``BaseCAM`` subclass so it shares the hooks, resizing and batching of the others.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.base_cam import BaseCAM

from chestxai.explain.methods import METHODS, Method, UnsupportedMethodError


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


@METHODS.register("pcam")
class PCAMMethod(Method):
    summary = "the PCAM head's own probability map"
    final_layer_only = True

    def check(self, model) -> None:
        if not callable(getattr(getattr(model, "head", None), "probability_maps", None)):
            raise UnsupportedMethodError(
                "method 'pcam' reads a PCAM head's probability map, but this model has a "
                f"{getattr(model, 'head_type', '?')!r} head; use --method gradcam, or train with head='pcam'"
            )

    def build(self, model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
        return PCAMMap(model, target_layers, reshape_transform)

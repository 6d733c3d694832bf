"""The random-map control: what a localization score looks like when the map knows nothing.

Every reported method sits beside it; a method that does not beat it has not localised anything.
Noise is drawn at the target layer's grid (the resolution a CAM has) and upsampled like a CAM,
so the control's maxima are as coarse as a real CAM's. Unlike pytorch-grad-cam's ``RandomCAM``
(which draws from NumPy's global state) the generator is the explainer's, seeded, so runs repeat.
"""

from __future__ import annotations

import numpy as np
from pytorch_grad_cam.base_cam import BaseCAM

from chestxai.explain.methods import CONTROL, METHODS, Method


class RandomMap(BaseCAM):
    def __init__(self, model, target_layers, reshape_transform=None, rng: np.random.Generator | None = None):
        super().__init__(model, target_layers, reshape_transform, uses_gradients=False)
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def get_cam_image(
        self, input_tensor, target_layer, targets, activations, grads, eigen_smooth
    ) -> np.ndarray:
        b, _c, h, w = activations.shape
        return self.rng.random((b, h, w), dtype=np.float32)


@METHODS.register(CONTROL)
class RandomMethod(Method):
    summary = "seeded random map at the layer's grid (control)"

    def build(self, model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
        return RandomMap(model, target_layers, reshape_transform, rng=rng)

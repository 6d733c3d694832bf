"""CAM (Zhou et al., CVPR 2016): class weights times feature maps, no gradients.

For a model whose logit is ``z_k = sum_c W[k, c] * mean_xy A_c(x, y) + b_k`` (global average
pooling, then one linear layer) the map ``M_k(x, y) = sum_c W[k, c] A_c(x, y)`` is *exactly* each
location's contribution to ``z_k`` (times ``h * w``): the one CAM that is a decomposition of the
logit rather than an approximation of it. pytorch-grad-cam ships its generalisations (Grad-CAM
equals CAM up to scale on such models) but not CAM itself, and it is four lines on top of the
library's ``BaseCAM``: the class weights replace the gradient-derived channel weights.

It is only valid where that identity holds: :func:`check_gap_model` verifies it numerically and
refuses other models (VGG's convolutional MLP before pooling, ViT's class-token pooling, the PCAM
head) with a pointer to the gradient methods.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.base_cam import BaseCAM

from chestxai.explain.methods import METHODS, Method, UnsupportedMethodError


class CAM(BaseCAM):
    """CAM over pytorch-grad-cam's plumbing; ``class_weights`` is the ``L x C`` classifier matrix."""

    def __init__(
        self, model, target_layers, reshape_transform=None, class_weights: torch.Tensor | None = None
    ):
        super().__init__(model, target_layers, reshape_transform, uses_gradients=False)
        if class_weights is None:
            class_weights = model.classifier_weights()
        self.class_weights = class_weights.detach().float().cpu().numpy()

    def get_cam_weights(self, input_tensor, target_layers, targets, activations, grads) -> np.ndarray:
        return self.class_weights[[int(t.category) for t in targets]]


def check_gap_model(model, fmap: torch.Tensor, atol: float = 1e-4) -> None:
    """Raise :class:`UnsupportedMethodError` unless pooled features == mean of the final feature map."""
    if getattr(model, "family", "cnn") != "cnn" or getattr(model, "head_type", "pooled") != "pooled":
        raise UnsupportedMethodError(
            f"CAM needs a CNN with a global-average-pooled linear head; this model is "
            f"{getattr(model, 'family', '?')} with a {getattr(model, 'head_type', '?')} head. Use --method gradcam "
            f"(or --method pcam for a PCAM head)."
        )
    with torch.no_grad():
        pooled = model.pool(fmap)
        gap = fmap.mean(dim=(2, 3))
    if pooled.shape != gap.shape or not torch.allclose(pooled, gap, atol=atol, rtol=1e-4):
        raise UnsupportedMethodError(
            f"CAM needs logits = W . global-average-pool(final feature map) + b, but "
            f"{model.config.get('name', type(model).__name__)} transforms features before pooling "
            f"(e.g. VGG's convolutional MLP), so class weights do not map onto the feature map. "
            f"Use --method gradcam."
        )


@METHODS.register("cam")
class CAMMethod(Method):
    summary = "class weights x final feature map (GAP CNNs only)"
    final_layer_only = True

    def check(self, model) -> None:
        """The GAP identity, checked on one seeded random image (eval mode, no gradients)."""
        if getattr(model, "family", "cnn") != "cnn" or getattr(model, "head_type", "") != "pooled":
            check_gap_model(model, torch.zeros(0))  # refuses with the reason
        size = int(model.config.get("input_size", 224))
        in_chans = int(model.config.get("in_chans", 1))
        device = next(model.parameters()).device
        x = torch.randn(1, in_chans, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                fmap = model.features(x)
        finally:
            model.train(was_training)
        check_gap_model(model, fmap)

    def build(self, model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
        return CAM(model, target_layers, reshape_transform)

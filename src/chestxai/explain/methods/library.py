"""The CAM family as pytorch-grad-cam implements it: one registry entry per library class.

Not re-implemented: these are the library's classes with its own defaults. ScoreCAM is the one
with a knob, its inner batch size (it scores one masked copy of each image per channel of the
target layer, so the batch bounds memory, not results).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.base_cam import BaseCAM

from chestxai.explain.methods import METHODS, Method


@dataclass(frozen=True)
class LibraryMethod(Method):
    """A pytorch-grad-cam class used as it is; subclasses name the class."""

    cam_class: ClassVar[type[BaseCAM]]

    def build(self, model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
        return self.cam_class(model, target_layers, reshape_transform=reshape_transform)


@METHODS.register("gradcam")
class GradCAMMethod(LibraryMethod):
    cam_class, gradients, summary = GradCAM, True, "channel weights = spatial mean of gradients"


@METHODS.register("gradcam++")
class GradCAMPlusPlusMethod(LibraryMethod):
    cam_class, gradients, summary = GradCAMPlusPlus, True, "second-order weighting of positive gradients"


@METHODS.register("xgradcam")
class XGradCAMMethod(LibraryMethod):
    cam_class, gradients, summary = XGradCAM, True, "gradients weighted by normalised activations"


@METHODS.register("layercam")
class LayerCAMMethod(LibraryMethod):
    cam_class, gradients, summary = LayerCAM, True, "element-wise positive gradients x activations"


@METHODS.register("hirescam")
class HiResCAMMethod(LibraryMethod):
    cam_class, gradients, summary = HiResCAM, True, "element-wise gradients x activations"


@METHODS.register("eigencam")
class EigenCAMMethod(LibraryMethod):
    cam_class = EigenCAM
    summary = "first principal component of the activations (class-agnostic)"


@METHODS.register("scorecam")
@dataclass(frozen=True)
class ScoreCAMMethod(LibraryMethod):
    """``batch_size``: masked images scored per forward pass."""

    cam_class = ScoreCAM
    summary = "channel weights = score of the image masked by each map"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1:
            raise ValueError(f"scorecam batch_size must be >= 1, got {self.batch_size}")

    def build(self, model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
        cam = super().build(model, target_layers, reshape_transform, rng)
        cam.batch_size = int(self.batch_size)
        return cam

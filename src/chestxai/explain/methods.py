"""The explainer registry: method name -> how to build its pytorch-grad-cam object.

Every method is a ``BaseCAM`` (the library's, or one of the three written here: CAM, the PCAM
map and the seeded random control), so hooks, resizing and batching are the library's.
``list_methods()`` is what ``--method`` accepts and what ``--compare-methods`` ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pytorch_grad_cam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.base_cam import BaseCAM

from chestxai.explain.cam import CAM
from chestxai.explain.pcam_map import PCAMMap
from chestxai.explain.random_map import RandomMap
from chestxai.registry import Registry

#: builder(model, target_layers, reshape_transform, rng) -> BaseCAM
Builder = Callable[..., BaseCAM]

#: name of the random-map control, computed beside every method
CONTROL = "random"


@dataclass(frozen=True)
class MethodSpec:
    """``gradients``: needs a backward pass. ``requires``: ``"gap"`` (CAM), ``"pcam"`` or None."""

    build: Builder
    gradients: bool
    summary: str
    requires: str | None = None


def _library(cls: type[BaseCAM]) -> Builder:
    def build(model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
        return cls(model, target_layers, reshape_transform=reshape_transform)

    return build


def _random(model, target_layers, reshape_transform=None, rng: np.random.Generator | None = None) -> BaseCAM:
    return RandomMap(model, target_layers, reshape_transform, rng=rng)


def _cam(model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
    return CAM(model, target_layers, reshape_transform)


def _pcam(model, target_layers, reshape_transform=None, rng=None) -> BaseCAM:
    return PCAMMap(model, target_layers, reshape_transform)


METHODS: Registry[MethodSpec] = Registry("explanation method")
METHODS.add("cam", MethodSpec(_cam, False, "class weights x final feature map (GAP CNNs only)", "gap"))
METHODS.add("gradcam", MethodSpec(_library(GradCAM), True, "channel weights = spatial mean of gradients"))
METHODS.add(
    "gradcam++", MethodSpec(_library(GradCAMPlusPlus), True, "second-order weighting of positive gradients")
)
METHODS.add("xgradcam", MethodSpec(_library(XGradCAM), True, "gradients weighted by normalised activations"))
METHODS.add("layercam", MethodSpec(_library(LayerCAM), True, "element-wise positive gradients x activations"))
METHODS.add("hirescam", MethodSpec(_library(HiResCAM), True, "element-wise gradients x activations"))
METHODS.add(
    "scorecam",
    MethodSpec(_library(ScoreCAM), False, "channel weights = score of the image masked by each map"),
)
METHODS.add(
    "eigencam",
    MethodSpec(_library(EigenCAM), False, "first principal component of the activations (class-agnostic)"),
)
METHODS.add("pcam", MethodSpec(_pcam, False, "the PCAM head's own probability map", "pcam"))
METHODS.add(CONTROL, MethodSpec(_random, False, "seeded random map at the layer's grid (control)"))


def list_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)


def gradient_methods() -> list[str]:
    return [n for n in METHODS.names() if METHODS.get(n).gradients]

"""The architectures the chest X-ray literature compares: our name -> a :class:`ModelSpec`.

Adding an architecture is one ``MODELS.add`` entry here (a timm model), or, for a backbone timm
does not have, a ``ModelSpec`` subclass overriding :meth:`ModelSpec.create_backbone` registered
from its own module. ``tests/models/test_every_model.py`` is parametrised over this registry, so
every entry is trained for a step, with every head it supports, automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chestxai.registry import Registry

if TYPE_CHECKING:  # listing models must not import torch
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A backbone's metadata, and the one hook that builds it.

    ``family``: ``"cnn"`` (feature map ``B x C x H x W``) or ``"vit"`` (tokens ``B x N x C``);
    heads and explainers read it. ``min_size``: the smallest input that gives a >= 1 x 1 feature
    map (measured per model).
    """

    timm_name: str
    family: str
    min_size: int = 16

    def create_backbone(
        self, in_chans: int, input_size: int, state_dict: dict | None = None, source_chans: int = 3
    ) -> nn.Module:
        """A classifier-less backbone (timm: ``num_classes=0``) for ``in_chans``-channel images;
        ``state_dict`` (already read, see :mod:`chestxai.models.weights`) initialises it, with
        timm adapting the first convolution from ``source_chans`` (3 for ImageNet weights, 1 for
        chest X-ray weights) to ``in_chans`` and dropping the pretrained classifier."""
        import timm

        kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": in_chans}
        if self.family == "vit":
            kwargs["img_size"] = input_size
        if state_dict is not None:
            # timm edits the dict it is given (input conv, classifier): hand it a shallow copy
            overlay: dict[str, Any] = {"state_dict": dict(state_dict)}
            if source_chans != 3:  # timm reads the weights' channel count from the cfg's input_size
                overlay["input_size"] = (source_chans, input_size, input_size)
            kwargs.update(pretrained=True, pretrained_cfg_overlay=overlay)
        return timm.create_model(self.timm_name, **kwargs)


MODELS: Registry[ModelSpec] = Registry("model")
MODELS.add("resnet18", ModelSpec("resnet18", "cnn"))
MODELS.add("resnet34", ModelSpec("resnet34", "cnn"))
MODELS.add("resnet50", ModelSpec("resnet50", "cnn"))
MODELS.add("resnet101", ModelSpec("resnet101", "cnn"))
MODELS.add("vgg16", ModelSpec("vgg16", "cnn", min_size=32))
MODELS.add("densenet121", ModelSpec("densenet121", "cnn", min_size=32))
MODELS.add("efficientnet_b0", ModelSpec("efficientnet_b0", "cnn"))
MODELS.add("mobilenetv2", ModelSpec("mobilenetv2_100", "cnn"))
MODELS.add("vit_tiny", ModelSpec("vit_tiny_patch16_224", "vit", min_size=16))
MODELS.add("vit_small", ModelSpec("vit_small_patch16_224", "vit", min_size=16))

"""The architectures the chest X-ray literature compares, by our name -> timm name and family.

Adding an architecture is one line here; ``tests/models/test_every_model.py`` is parametrised
over this registry so every entry is trained for a step automatically.
"""

from __future__ import annotations

from dataclasses import dataclass

from chestxai.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    timm_name: str
    family: str  # "cnn" (feature map B x C x H x W) or "vit" (tokens B x N x C)
    min_size: int = 16  # smallest input that gives a >= 1 x 1 feature map (measured per model)


MODELS: Registry[ModelSpec] = Registry("model")
for _name, _spec in {
    "resnet18": ModelSpec("resnet18", "cnn"),
    "resnet34": ModelSpec("resnet34", "cnn"),
    "resnet50": ModelSpec("resnet50", "cnn"),
    "resnet101": ModelSpec("resnet101", "cnn"),
    "vgg16": ModelSpec("vgg16", "cnn", min_size=32),
    "densenet121": ModelSpec("densenet121", "cnn", min_size=32),
    "efficientnet_b0": ModelSpec("efficientnet_b0", "cnn"),
    "mobilenetv2": ModelSpec("mobilenetv2_100", "cnn"),
    "vit_tiny": ModelSpec("vit_tiny_patch16_224", "vit", min_size=16),
    "vit_small": ModelSpec("vit_small_patch16_224", "vit", min_size=16),
}.items():
    MODELS.add(_name, _spec)

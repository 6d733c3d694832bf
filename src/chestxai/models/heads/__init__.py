"""Classification heads: what turns a backbone's features into the task's logits.

A head is a :class:`Head` subclass in its own module of this package, registered with
``@HEADS.register("name")``; the package's modules are imported on the first lookup, so a new
head is one new file (plus its test: ``tests/models/test_every_model.py`` trains every registered
head on every architecture it supports). ``model.head`` in a recipe and ``--head`` name it.
"""

from __future__ import annotations

import torch
from torch import nn

from chestxai.registry import Registry


def pooled_width(backbone: nn.Module) -> int:
    """Width of the backbone's pooled features (timm: ``head_hidden_size`` after pre-logits layers,
    else ``num_features``, the channels of the feature map)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


class Head(nn.Module):
    """Base class: the plumbing (what input, which backbones, how wide) is declared, ``forward`` is
    the one hook.

    ``consumes``: ``"pooled"`` - ``forward`` gets the backbone's own pooled features ``B x C``
    (average pooling for CNNs, the class token for ViT); ``"feature_map"`` - it gets the CNN feature
    map ``B x C x H x W`` and pools it itself. ``families``: the backbone families it works on
    (``"cnn"``, ``"vit"``). ``summary``: one line for listings.
    """

    consumes: str = "pooled"
    families: tuple[str, ...] = ("cnn", "vit")
    summary: str = ""

    @classmethod
    def build(cls, backbone: nn.Module, num_outputs: int, dropout: float = 0.0) -> Head:
        """A head of ``num_outputs`` logits sized for ``backbone`` (a head may adapt the backbone
        first, e.g. drop layers it makes dead)."""
        width = int(backbone.num_features) if cls.consumes == "feature_map" else pooled_width(backbone)
        return cls(width, num_outputs, dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - the hook
        raise NotImplementedError

    def class_weights(self) -> torch.Tensor:
        """``L x C`` weights mapping pooled features to logits (what CAM multiplies feature maps by)."""
        raise NotImplementedError(f"{type(self).__name__} has no linear class weights")


HEADS: Registry[type[Head]] = Registry("head", package=__name__)


def list_heads() -> list[str]:
    return HEADS.names()


def get_head(name: str, family: str | None = None) -> type[Head]:
    """The head class registered as ``name``; with ``family``, a ValueError if it cannot sit on it."""
    cls = HEADS.get(name)
    if family is not None and family not in cls.families:
        fits = [n for n in HEADS.names() if family in HEADS.get(n).families]
        raise ValueError(
            f"the {name!r} head works on {', '.join(cls.families)} backbones, not {family}; "
            f"use head={fits[0]!r} (heads for {family}: {', '.join(fits)})"
        )
    return cls

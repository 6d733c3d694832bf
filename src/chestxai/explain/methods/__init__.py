"""The explainer registry: method name -> a :class:`Method`, which builds a pytorch-grad-cam object.

Every method is a ``BaseCAM`` underneath (the library's, or one written here: CAM, the PCAM map,
the seeded random control), so hooks, resizing and batching are the library's. A method is a
frozen dataclass registered with ``@METHODS.register("name")`` in its own module of this package
(one module per family is fine); the package's modules are imported on the first lookup. What is
particular to a method stays in its class:

* ``build`` - the one hook: model, target layers, reshape, generator -> a ``BaseCAM``;
* ``check`` - refuse a model the method does not apply to (:class:`UnsupportedMethodError`);
* class attributes - ``summary``, ``gradients`` (needs a backward pass), ``final_layer_only``;
* dataclass fields - the method's own knobs (e.g. ScoreCAM's ``batch_size``), set per run with
  ``ExplainSettings(method_options={"scorecam": {"batch_size": 16}})``.

So a new explainer is one file (plus its test); ``tests/explain/test_methods.py`` runs every
registered method on a model automatically. ``list_methods()`` is what ``--method`` accepts and
what ``--compare-methods`` ranks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pytorch_grad_cam.base_cam import BaseCAM
from torch import nn

from chestxai.registry import Registry

#: name of the random-map control, computed beside every method
CONTROL = "random"


class UnsupportedMethodError(ValueError):
    """The method does not apply to this model; the message names one that does."""


@dataclass(frozen=True)
class Method:
    """Base class of an explanation method (see the module doc). Subclasses override ``build``."""

    summary: ClassVar[str] = ""
    gradients: ClassVar[bool] = False  # needs the backward pass (the input is made to require grad)
    final_layer_only: ClassVar[bool] = False  # defined on the final feature map only (CAM, PCAM)

    def check(self, model: nn.Module) -> None:
        """Raise :class:`UnsupportedMethodError` when the method does not apply to ``model``."""

    def build(
        self,
        model: nn.Module,
        target_layers: list[nn.Module],
        reshape_transform=None,
        rng: np.random.Generator | None = None,
    ) -> BaseCAM:  # pragma: no cover - the hook
        raise NotImplementedError


METHODS: Registry[type[Method]] = Registry("explanation method", package=__name__)


def list_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


def gradient_methods() -> list[str]:
    return [n for n in METHODS.names() if METHODS.get(n).gradients]


def method_options(name: str) -> dict[str, Any]:
    """The knobs of method ``name`` and their defaults (empty for a method without any)."""
    return {f.name: f.default for f in dataclasses.fields(get_method(name))}


def configure(name: str, options: Mapping[str, Any] | None = None) -> Method:
    """Method ``name`` with ``options`` (its knobs) set; unknown or out-of-range knobs are a
    ValueError naming the method and its valid options."""
    cls = get_method(name)
    options = dict(options or {})
    known = method_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        valid = ", ".join(f"{k} (default {v!r})" for k, v in known.items()) or "none"
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for method {name!r}; its options: {valid}")
    return cls(**options)

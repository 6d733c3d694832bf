"""Explanations you can measure: CAM-family heatmaps over pytorch-grad-cam, boxes, and scores.

* :class:`Explainer` / :func:`list_methods` - batched heatmaps for any registered model, target
  layer found per architecture (``layers.py``), ViT tokens folded by the model's patch grid;
* :func:`boxes_from_heatmap` - threshold + connected components;
* ``localization`` - pointing game, IoU, IoBB, energy (pure functions); ``faithfulness`` -
  deletion/insertion AUC and ROAD;
* :func:`explain_run` / :func:`compare_methods` / :func:`compare_layers` - the run-directory
  pipeline behind ``chestxai explain``;
* :func:`randomisation_similarity` - the model-randomisation sanity check (``sanity``), border /
  outside-lung energy (``anatomy``) and the paired comparison with the random control (``checks``).

The names below are imported on first use (PEP 562): ``chestxai --help`` reads
:class:`ExplainSettings` for the ``explain`` flags and must not pay for torch on the way.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_WHERE = {
    "Box": "boxes",
    "boxes_from_heatmap": "boxes",
    "otsu_threshold": "boxes",
    "Explainer": "explainer",
    "compare_layers": "layer_compare",
    "LayerNotFoundError": "layers",
    "find_target_layer": "layers",
    "CONTROL": "methods",
    "UnsupportedMethodError": "methods",
    "gradient_methods": "methods",
    "list_methods": "methods",
    "ExplainResult": "run",
    "compare_methods": "run",
    "explain_run": "run",
    "randomisation_similarity": "sanity",
    "ExplainSettings": "settings",
    "UnknownFindingError": "targets",
}


__all__ = [
    "CONTROL",
    "Box",
    "ExplainResult",
    "ExplainSettings",
    "Explainer",
    "LayerNotFoundError",
    "UnknownFindingError",
    "UnsupportedMethodError",
    "boxes_from_heatmap",
    "compare_layers",
    "compare_methods",
    "explain_run",
    "find_target_layer",
    "gradient_methods",
    "list_methods",
    "otsu_threshold",
    "randomisation_similarity",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])

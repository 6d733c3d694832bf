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
"""

from chestxai.explain.boxes import Box, boxes_from_heatmap, otsu_threshold
from chestxai.explain.explainer import Explainer
from chestxai.explain.layer_compare import compare_layers
from chestxai.explain.layers import LayerNotFoundError, find_target_layer
from chestxai.explain.methods import CONTROL, UnsupportedMethodError, gradient_methods, list_methods
from chestxai.explain.run import ExplainResult, compare_methods, explain_run
from chestxai.explain.sanity import randomisation_similarity
from chestxai.explain.settings import ExplainSettings
from chestxai.explain.targets import UnknownFindingError

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

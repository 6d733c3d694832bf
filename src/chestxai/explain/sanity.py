"""Sanity checks for saliency maps (Adebayo et al., NeurIPS 2018): do the maps depend on the model?

An explanation that looks the same for a trained network and for one whose weights were destroyed
explains the *image* (edges, contrast), not the decision. Model parameter randomisation:

* **cascading**: re-initialise the head, then each block below it in turn (top down), keeping the
  earlier ones random, and compare the maps at every step with the trained model's;
* **independent**: re-initialise one block at a time, the rest trained.

Blocks (:func:`parameter_blocks`): the head (every parameter outside the backbone), then the
backbone's children in reverse forward order; a container holding more than half of its
parent's parameters is opened into its children (DenseNet's ``features``, ViT's ``blocks``,
ResNet's ``layer4``), so no single step destroys nearly everything at once.

Re-initialising uses each module's own ``reset_parameters`` (PyTorch's initialisation; batch norm
also resets its running statistics), seeded; a parameter no module resets (a ViT's ``pos_embed``,
``cls_token``) is redrawn from a normal distribution with its trained standard deviation.

Similarity of a randomised map to the trained one, per image, then averaged over ``n_images``:

* **Spearman** rank correlation of the pixel values (scipy), as an absolute value (Adebayo et
  al.'s choice: a map whose sign flips still carries the same information). A constant map (e.g.
  a Grad-CAM whose ReLU removed everything) has no ranks: it counts as 0 (it changed) and is
  counted in ``n_constant``;
* **SSIM**, the standard one (:func:`chestxai.explain.map_agreement.map_ssim`: Gaussian 11 x 11
  window, interior windows only, maps in [0, 1]; a smaller window on maps under 11 px).

Verdict: a method **fails** when the fully randomised model's (the last cascading step) mean
|Spearman| to the trained maps is at least :data:`SANITY_THRESHOLD`; its maps did not change
when the weights were destroyed. A trained map that is itself constant (Grad-CAM's ReLU can empty
a shallow layer's map) cannot be compared and is left out, counted in ``n_empty_trained_maps``;
when fewer than :data:`MIN_COMPARED` trained maps are left there is no verdict (``passed: null``). Label randomisation (retraining on permuted labels) costs a full
training per run, so it is not run here; :func:`map_similarity` compares any two models' maps.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from chestxai.explain.explainer import Explainer
from chestxai.explain.layers import n_params, stage_modules
from chestxai.explain.map_agreement import map_similarity, summarise_similarity

log = logging.getLogger(__name__)

SANITY_THRESHOLD = 0.5  # mean |Spearman| of the fully randomised model's maps at or above it: FAIL
MIN_COMPARED = 3  # fewer non-empty trained maps than this (or than the images given): no verdict
HEAD = "head"


def parameter_blocks(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """``[(name, modules)]`` from the head down to the stem (see the module doc)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return [(name, [m]) for name, m in reversed(stage_modules(model))]
    head = [m for name, m in model.named_children() if name != "backbone" and n_params(m) > 0]
    blocks = [(HEAD, head)] if head else []
    blocks += [(name, [m]) for name, m in reversed(stage_modules(backbone, "backbone"))]
    return blocks


def randomise_(modules: Sequence[nn.Module], seed: int = 0, own_only: bool = False) -> None:
    """Re-initialise ``modules`` in place (see the module doc); seeded, global RNG left as it was.

    ``own_only``: only the parameters the module holds directly (the ``<own>`` block of a module
    whose children are blocks of their own)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in modules:
            reset: set[int] = set()
            if not own_only:
                for m in module.modules():
                    if hasattr(m, "reset_parameters"):
                        m.reset_parameters()
                        reset |= {id(p) for p in m.parameters(recurse=False)}
            for p in module.parameters(recurse=not own_only):
                if id(p) not in reset:
                    std = float(p.float().std()) if p.numel() > 1 else 0.0
                    p.normal_(0.0, std if std > 0 else 0.02)


def _row(randomised: str, blocks: list[str], sim: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"randomised": randomised, "blocks": blocks} | summarise_similarity(sim)


def randomisation_similarity(
    model: nn.Module,
    images: torch.Tensor,
    method: str = "gradcam",
    layer: str | None = None,
    indices: Sequence[int] | None = None,
    modes: Sequence[str] = ("cascading", "independent"),
    seed: int = 0,
    batch_size: int = 16,
    options: Mapping[str, Any] | None = None,
    threshold: float = SANITY_THRESHOLD,
    progress: bool = False,
) -> dict[str, Any]:
    """Model parameter randomisation check of ``method`` at ``layer`` on ``images``.

    ``images``: model inputs ``N x C x S x S`` (preprocessed); ``indices[i]``: the output explained
    for image ``i`` (default 0), the same for the trained and the randomised models. ``model`` is
    not changed (randomised copies are made). Returns ``{method, layer, n_images, metric, threshold,
    cascading: [{randomised, blocks, spearman, spearman_std, ssim, n_constant}], independent: [...],
    final: the last cascading row, passed, verdict}``.
    """
    unknown = sorted(set(modes) - {"cascading", "independent"})
    if unknown or not modes:
        raise ValueError(f"unknown randomisation mode(s) {unknown}; use 'cascading' and/or 'independent'")
    if len(images) == 0:
        raise ValueError("the sanity check needs at least one image")
    indices = [0] * len(images) if indices is None else [int(i) for i in indices]
    model.eval()

    def maps(net: nn.Module) -> tuple[str, np.ndarray]:
        explainer = Explainer(net, method, layer=layer, seed=seed, options=options)
        out = [
            explainer.explain(images[lo : lo + batch_size], indices[lo : lo + batch_size])
            for lo in range(0, len(images), batch_size)
        ]
        return explainer.layer_name, np.concatenate(out)

    layer_name, trained = maps(model)
    blocks = parameter_blocks(model)
    steps = [("cascading", i) for i in range(len(blocks)) if "cascading" in modes]
    steps += [("independent", i) for i in range(len(blocks)) if "independent" in modes]
    result: dict[str, Any] = {"cascading": [], "independent": []}
    cascade = copy.deepcopy(model)
    cascade_modules = dict(cascade.named_modules())
    done: list[str] = []
    for mode, i in tqdm(steps, desc=f"sanity {method}", disable=not progress, leave=False):
        name = blocks[i][0]
        if mode == "cascading":
            net = cascade
            modules = _modules_of(model, cascade_modules, blocks[i][1])
            done.append(name)
            which = list(done)
        else:
            net = copy.deepcopy(model)
            modules = _modules_of(model, dict(net.named_modules()), blocks[i][1])
            which = [name]
        randomise_(modules, seed=seed + i + 1, own_only=name.endswith("<own>"))
        net.eval()
        _, randomised = maps(net)
        result[mode].append(_row(name, which, map_similarity(trained, randomised)))
    final = result["cascading"][-1] if result["cascading"] else None
    n_empty = int((np.ptp(trained.reshape(len(trained), -1), axis=1) == 0).sum())
    compared = final["n_compared"] if final else 0
    enough = compared >= min(MIN_COMPARED, len(images))
    passed = None if final is None or not compared or not enough else bool(final["spearman"] < threshold)
    empty_note = (
        f" ({n_empty} of {len(images)} trained maps are empty (constant) and cannot be compared)"
        if n_empty
        else ""
    )
    if final is None:
        verdict = "no cascading randomisation run: no verdict"
    elif passed is None:
        verdict = (
            f"no verdict: {n_empty} of the trained model's {len(images)} maps are empty (constant), leaving "
            f"{compared} to compare (at least {min(MIN_COMPARED, len(images))} needed); explain another layer "
            f"or method"
        )
    elif passed:
        verdict = (
            f"passed: with every block re-initialised the maps' mean |Spearman| to the trained model's is "
            f"{final['spearman']:.2f} (< {threshold:g}) on {compared} images{empty_note}; the maps depend on the weights"
        )
    else:
        verdict = (
            f"FAILED: with every block re-initialised the maps' mean |Spearman| to the trained model's is still "
            f"{final['spearman']:.2f} (>= {threshold:g}) on {compared} images{empty_note}; {method}'s maps do not "
            f"depend on what the model learned (they explain the image, not the decision)"
        )
    result.update(
        {
            "method": method,
            "layer": layer_name,
            "n_images": int(len(images)),
            "n_empty_trained_maps": n_empty,
            "metric": "mean |Spearman| over images (scipy) and standard SSIM, randomised vs trained maps",
            "threshold": threshold,
            "final": final,
            "passed": passed,
            "verdict": verdict,
        }
    )
    return result


def _modules_of(original: nn.Module, copy_modules: dict[str, nn.Module], modules: list[nn.Module]):
    """The copies (by dotted name) of ``modules`` of ``original`` inside a deep-copied model."""
    names = {id(m): n for n, m in original.named_modules()}
    return [copy_modules[names[id(m)]] for m in modules]

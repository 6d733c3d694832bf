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
when fewer than :data:`MIN_COMPARED` trained maps are left there is no verdict (``passed: null``).

Read against Arun et al.'s baseline: the result carries ``baseline`` / ``baseline_ssim``, the
similarity of 50 random pairs of the trained model's maps of *different* images
(:func:`chestxai.explain.map_agreement.random_pairs_baseline`); a randomised model's maps no more
like the trained ones than that changed as much as two unrelated maps.

Every row whose maps stay alike (mean |Spearman| >= the threshold) says ``why``, from measurement
(:func:`why_unchanged`): how much re-initialising the block changed its output
(``output_change``, :func:`block_output_change`; near 0 for a residual block that the trained
network barely uses: on the quickstart's 28 px ResNet-18, ``layer4.1`` adds 3% to its input and
its re-initialisation moves its output by 4%), how much the trained block adds to its input
(:func:`residual_share`), whether it lies above the explained layer (it reaches the maps only
through the gradient), holds it, or lies below it, and whether the trained maps of different
images are already alike (a fixed pattern a randomised model keeps). See docs/BENCHMARKS.md,
"Why the quickstart's HiResCAM maps hardly change". Label randomisation (retraining on permuted labels) costs a full
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
from chestxai.explain.map_agreement import map_similarity, random_pairs_baseline, summarise_similarity

log = logging.getLogger(__name__)

SANITY_THRESHOLD = 0.5  # mean |Spearman| of the fully randomised model's maps at or above it: FAIL
MIN_COMPARED = 3  # fewer non-empty trained maps than this (or than the images given): no verdict
HEAD = "head"
#: a re-initialised block whose output moved by less than this (relative L2 on the images checked)
#: left the network nearly as it was; its row's ``why`` says so
SMALL_CHANGE = 0.1


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


def block_output_change(
    trained: nn.Module, randomised: nn.Module, names: Sequence[str], x: torch.Tensor, batch_size: int = 16
) -> float | None:
    """Relative change ``||out' - out|| / ||out||`` of the outputs of the modules ``names`` (dotted,
    the same in both models) between ``trained`` and ``randomised`` on inputs ``x``; None when a
    name is not a module (an ``<own>`` block) or the trained output is all zero.

    Randomisation goes top down, so the blocks below a newly re-initialised block are trained and
    its input is the same in both models: this is how much re-initialising it changed what it
    computes. Near 0, the "randomised" network is the trained one in all but name."""
    outs = _outputs(trained, names, x, batch_size), _outputs(randomised, names, x, batch_size)
    if outs[0] is None or outs[1] is None or len(outs[0]) != len(outs[1]):
        return None
    diff = sum(float((b - a).pow(2).sum()) for (_, a), (_, b) in zip(outs[0], outs[1], strict=True))
    norm = sum(float(a.pow(2).sum()) for _, a in outs[0])
    return float(np.sqrt(diff / norm)) if norm > 0 else None


def residual_share(
    model: nn.Module, names: Sequence[str], x: torch.Tensor, batch_size: int = 16
) -> float | None:
    """``||out - in|| / ||out||`` of the modules ``names`` of ``model`` on ``x``: how much a block
    adds to what passes through it. Small for a residual block whose branch carries little (its skip
    connection hands the input on); None where input and output differ in shape (a downsampling
    block, a head) or a name is not a module."""
    pairs = _outputs(model, names, x, batch_size, inputs=True)
    if pairs is None or any(i is None or i.shape != o.shape for i, o in pairs):
        return None
    norm = sum(float(o.pow(2).sum()) for _, o in pairs)
    diff = sum(float((o - i).pow(2).sum()) for i, o in pairs)
    return float(np.sqrt(diff / norm)) if norm > 0 else None


def _outputs(model: nn.Module, names: Sequence[str], x: torch.Tensor, batch_size: int, inputs: bool = False):
    """``[(input or None, output)]`` of the modules ``names`` per batch, in call order; None when a
    name is not a module of ``model``."""
    modules = dict(model.named_modules())
    if any(n not in modules for n in names):
        return None
    got: list[tuple[torch.Tensor | None, torch.Tensor]] = []

    def flat(t):
        t = t[0] if isinstance(t, (tuple, list)) else t
        return t.detach().float().flatten(1) if isinstance(t, torch.Tensor) else None

    def hook(_m, args, out):
        got.append((flat(args) if inputs and args else None, flat(out)))

    handles = [modules[n].register_forward_hook(hook) for n in names]
    try:
        with torch.no_grad():
            for lo in range(0, len(x), batch_size):
                model(x[lo : lo + batch_size])
    finally:
        for h in handles:
            h.remove()
    return [(i, o) for i, o in got if o is not None]


def _forward_order(model: nn.Module, names: Sequence[str], x: torch.Tensor) -> dict[str, int]:
    """The order in which the modules ``names`` are first called in a forward pass of ``x``."""
    modules = dict(model.named_modules())
    order: dict[str, int] = {}

    def hook(name: str):
        def record(*_args) -> None:  # a forward hook that returns something replaces the output
            order.setdefault(name, len(order))

        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in names if n in modules]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return order


def why_unchanged(
    block: str,
    layer: str,
    position: str,
    change: float | None,
    residual: float | None,
    baseline: dict | None,
    threshold: float = SANITY_THRESHOLD,
) -> str:
    """The measured reasons a randomisation row's maps stayed alike (|Spearman| >= threshold).

    ``position``: ``above`` / ``holds`` / ``below`` the explained ``layer``; ``change``:
    :func:`block_output_change` of the re-initialised block; ``residual``: :func:`residual_share`
    of the trained block; ``baseline``: the random-pairs baseline of the trained maps."""
    parts = []
    if change is not None and change < SMALL_CHANGE:
        text = (
            f"re-initialising {block} changed its output by only {change:.1%} on these images, so the "
            f"network hardly changed"
        )
        if residual is not None and residual < SMALL_CHANGE:
            text += (
                f" (the trained block is itself nearly an identity: its output differs from its input by "
                f"{residual:.1%}; its residual branch carries little and the skip connection hands the input on, "
                f"trained or re-initialised)"
            )
        parts.append(text)
    elif change is not None:
        parts.append(f"re-initialising {block} changed its output by {change:.0%}")
    if position == "above":
        parts.append(
            f"{block} lies above the explained layer {layer}, so it reaches the maps only through the gradient"
        )
    elif position == "holds":
        parts.append(f"{block} holds the explained layer {layer}")
    elif position == "below":
        parts.append(f"{block} lies below the explained layer {layer}")
    rho = (baseline or {}).get("spearman")
    if rho is not None and rho >= threshold:
        parts.append(
            f"the trained maps of different images are already alike ({baseline['n_pairs']} random pairs: "
            f"|Spearman| {rho:.2f}, SSIM {baseline['ssim']:.2f}): a fixed pattern that does not come from the "
            f"image, and the randomised model keeps it"
        )
    elif change is not None and change >= SMALL_CHANGE:
        parts.append("yet the maps hardly moved: they depend little on this block's weights")
    return "; ".join(parts)


def _one_per_image(images: torch.Tensor) -> list[int]:
    """Indices of the first of each distinct input (items of one image for several findings share it)."""
    seen: dict[bytes, int] = {}
    for i, im in enumerate(images):
        seen.setdefault(im.detach().cpu().numpy().tobytes(), i)
    return sorted(seen.values())


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
    baseline, baseline_ssim, cascading: [{randomised, blocks, spearman, spearman_std, ssim,
    n_constant, and where the maps stayed alike output_change, why}], independent: [...],
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
    baseline = random_pairs_baseline(trained[_one_per_image(images)])
    blocks = parameter_blocks(model)
    block_names = {id(m): n for n, m in model.named_modules()}
    order = _forward_order(model, [*block_names.values()], images)
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
        row = _row(name, which, map_similarity(trained, randomised))
        if row["spearman"] is not None and row["spearman"] >= threshold:
            names = [block_names[id(m)] for m in blocks[i][1]]
            # top down, the blocks below are trained: the block's input is the trained model's
            row["output_change"] = block_output_change(model, net, names, images, batch_size)
            row["why"] = why_unchanged(
                name,
                layer_name,
                _position(names, layer_name, order),
                row["output_change"],
                residual_share(model, names, images, batch_size),
                baseline,
                threshold,
            )
        result[mode].append(row)
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
            "baseline": baseline,
            "baseline_ssim": baseline["ssim"],
            "final": final,
            "passed": passed,
            "verdict": verdict,
        }
    )
    return result


def _position(names: Sequence[str], layer: str, order: dict[str, int]) -> str:
    """Where the block ``names`` sits relative to the explained ``layer`` in the forward pass."""
    if any(layer == n or layer.startswith(n + ".") for n in names):
        return "holds"
    known = [order[n] for n in names if n in order]
    if not known or layer not in order:
        return "unknown"
    return "above" if min(known) > order[layer] else "below"


def _modules_of(original: nn.Module, copy_modules: dict[str, nn.Module], modules: list[nn.Module]):
    """The copies (by dotted name) of ``modules`` of ``original`` inside a deep-copied model."""
    names = {id(m): n for n, m in original.named_modules()}
    return [copy_modules[names[id(m)]] for m in modules]

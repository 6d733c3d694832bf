"""Which layer a CAM reads: found automatically per architecture, or named by a dotted path.

The automatic choice is derived from the model, not from a table of names, so a new registry
entry needs nothing here. One traced forward + backward on a dummy input records every module
output shaped like the final feature map (``B x C x h x w`` for CNNs, ``B x N x C`` tokens for
ViTs). Only modules of the feature extractor count (``model.features``; a head's pooling output can
have the same shape at tiny inputs). Walking back from the last one, the target is the first
whose gradient reaches the spatial positions:

* CNN with average pooling or a PCAM head: the final feature map itself (e.g. ResNet's last
  stage, DenseNet's ``norm5``);
* ViT pooled by its class token: the final ``norm`` and the last block's outputs pass gradient
  to the class token only, so the walk lands on the last block's ``norm1``, the last point where
  patch tokens still feed the class token through attention (pytorch-grad-cam's advice for ViT,
  derived here rather than assumed).

* CNN on small inputs (PneumoniaMNIST's 28 px, 64 px): the final map may be 1 x 1 or 2 x 2,
  which makes every heatmap uniform, and a 4 x 4 map's maximum can only fall on one of 16 cells
  (at 28 px its corner cells are a quarter of the image: the quickstart's maps peaked on the
  border). Then the walk continues to the deepest feature-extractor output that is at least
  ``MIN_SIDE`` x ``MIN_SIDE`` (ResNet-18: ``layer1`` at 28 px, ``layer2`` at 64 px, both 7-8 px
  grids); at 224 px the final 7 x 7 map is kept.

Containers are then opened while their last child yields the same tensor (``layer4`` ->
``layer4.1``, ``features`` -> ``features.norm5``), naming the module a person would pick.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from chestxai.registry import UnknownNameError

MIN_SIDE = 7  # smallest CAM grid worth showing; coarser maps carry little spatial information


class LayerNotFoundError(UnknownNameError):
    """A dotted layer name that is not in the model; the message lists candidate names."""


@dataclass(frozen=True)
class Trace:
    """Names of modules whose outputs are spatial maps, in forward order, and the chosen layers.

    ``final`` is the final feature map (what CAM and PCAM are defined on); ``default`` is where
    gradient methods read, the same layer except on tiny inputs (see :data:`MIN_SIDE`).
    """

    spatial: list[str]
    default: str
    final: str


def _input_size(model: nn.Module) -> int:
    return int(getattr(model, "config", {}).get("input_size", 224))


@contextmanager
def _recording(model: nn.Module, records: list[tuple[str, torch.Tensor]]) -> Iterator[None]:
    def hook(name: str):
        def record(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                records.append((name, output))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _is_spatial(t: torch.Tensor, family: str, feat_shape: torch.Size) -> bool:
    if family == "vit":
        return t.ndim == 3 and t.shape[:2] == feat_shape[:2]
    return t.ndim == 4 and t.shape[0] == feat_shape[0]


def trace_layers(model: nn.Module, input_size: int | None = None, seed: int = 0) -> Trace:
    """Trace ``model`` once on a dummy input (eval mode, parameters untouched); see module docstring."""
    size = input_size or _input_size(model)
    in_chans = int(getattr(model, "config", {}).get("in_chans", 1))
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x = torch.randn(1, in_chans, size, size, generator=gen).to(device)
    family = getattr(model, "family", "cnn")
    was_training = model.training
    model.eval()
    records: list[tuple[str, torch.Tensor]] = []
    try:
        with torch.enable_grad():
            x.requires_grad_(True)
            backbone_records: list[tuple[str, torch.Tensor]] = []
            with torch.no_grad(), _recording(model, backbone_records):
                feat_shape = model.features(x).shape
            in_features = {n for n, _ in backbone_records}  # modules of the feature extractor, not the head
            with _recording(model, records):
                out = model(x)
            records = [(n, t) for n, t in records if n in in_features]
            finals = [(n, t) for n, t in records if t.shape == feat_shape and t.requires_grad]
            grads = torch.autograd.grad(out.sum(), [t for _, t in finals], allow_unused=True)
    finally:
        model.train(was_training)
    prefix = _prefix_tokens(model) if family == "vit" else 0
    chosen = None
    for (name, t), g in zip(reversed(finals), reversed(grads), strict=True):
        if g is None:
            continue
        spatial_grad = g[:, prefix:] if family == "vit" else g
        if spatial_grad.abs().sum() > 0:
            chosen = (name, t)
            break
    if chosen is None:
        raise ValueError(
            f"could not find a layer whose gradient reaches the spatial positions of {type(model).__name__}; "
            f"name one with --layer"
        )
    final = _open_containers(model, chosen[0], chosen[1], records)
    if family == "cnn" and min(feat_shape[-2:]) < MIN_SIDE:
        finer = [(n, t) for n, t in records if t.ndim == 4 and min(t.shape[-2:]) >= MIN_SIDE]
        if finer:
            chosen = finer[-1]
    name = _open_containers(model, chosen[0], chosen[1], records)
    spatial = list(dict.fromkeys(n for n, t in records if _is_spatial(t, family, feat_shape)))
    return Trace(spatial=spatial, default=name, final=final)


def _prefix_tokens(model: nn.Module) -> int:
    return int(getattr(getattr(model, "backbone", model), "num_prefix_tokens", 1))


def _open_containers(model: nn.Module, name: str, tensor: torch.Tensor, records) -> str:
    modules = dict(model.named_modules())
    last_output = {n: t for n, t in records}  # the last call of each module wins
    while isinstance(modules[name], nn.Sequential) and len(modules[name]) > 0:
        child = f"{name}.{list(modules[name]._modules)[-1]}"
        out = last_output.get(child)
        if out is None or out.shape != tensor.shape or out.data_ptr() != tensor.data_ptr():
            break
        name = child
    return name


def find_target_layer(model: nn.Module, input_size: int | None = None) -> str:
    """Dotted name of the layer CAMs should read for ``model`` (see module docstring)."""
    return trace_layers(model, input_size).default


def resolve_layer(model: nn.Module, name: str, trace: Trace | None = None) -> tuple[str, nn.Module]:
    """``(full dotted name, module)`` for ``name``; also accepts names relative to ``model.backbone``.

    An unknown name raises :class:`LayerNotFoundError` listing the layers that produce spatial
    maps (the sensible choices) and the closest matches among all module names.
    """
    modules = dict(model.named_modules())
    for candidate in (name, f"backbone.{name}"):
        if candidate and candidate in modules:
            return candidate, modules[candidate]
    trace = trace or trace_layers(model)
    close = difflib.get_close_matches(name, list(modules), n=3, cutoff=0.6)
    hint = f" Closest names: {', '.join(close)}." if close else ""
    tail = trace.spatial[-12:]
    raise LayerNotFoundError(
        f"the model has no layer {name!r}.{hint} Layers producing spatial feature maps (last {len(tail)} of "
        f"{len(trace.spatial)}): {', '.join(tail)}. The automatic choice is {trace.default!r}; omit --layer to use it."
    )


def _spatial_outputs(model: nn.Module, input_size: int | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, output shape)`` of every feature-extractor module, in forward order (one traced pass)."""
    size = input_size or _input_size(model)
    in_chans = int(getattr(model, "config", {}).get("in_chans", 1))
    device = next(model.parameters()).device
    x = torch.zeros(1, in_chans, size, size, device=device)
    records: list[tuple[str, torch.Tensor]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _recording(model, records):
            model.features(x)
    finally:
        model.train(was_training)
    return [(n, tuple(t.shape)) for n, t in records]


def layer_grid(model: nn.Module, layer: str, input_size: int | None = None) -> tuple[int, int] | None:
    """``(rows, cols)`` of the map ``layer`` produces (a CAM's grid); None for token outputs (ViT)."""
    name, _ = resolve_layer(model, layer)
    shapes = dict(_spatial_outputs(model, input_size))
    shape = shapes.get(name)
    if shape is None or len(shape) != 4:
        if getattr(model, "family", "cnn") == "vit":
            grid = getattr(getattr(model.backbone, "patch_embed", None), "grid_size", None)
            return (int(grid[0]), int(grid[1])) if grid else None
        return None
    return int(shape[-2]), int(shape[-1])


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stage_modules(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Parameterised children of ``module`` in forward (registration) order, a container holding
    more than half of its parent's parameters opened into its children (DenseNet's ``features``,
    ViT's and EfficientNet's ``blocks``, ResNet's ``layer4``); parameters held directly (a ViT's
    ``pos_embed``) come first as ``<prefix>.<own>``. The granularity of sanity-check blocks and of
    ``--compare-layers``."""
    total = n_params(module)
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        size = n_params(child)
        if size == 0:
            continue
        full = f"{prefix}.{name}" if prefix else name
        is_container = isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1
        if is_container and size > total / 2:
            out += stage_modules(child, full)
        else:
            out.append((full, child))
    if any(True for _ in module.parameters(recurse=False)):
        out.insert(0, (f"{prefix}.<own>" if prefix else "<own>", module))
    return out


def candidate_layers(model: nn.Module, input_size: int | None = None, min_side: int = 2) -> list[str]:
    """Layers worth comparing (``--compare-layers``' default), shallow to deep: for a CNN, the last
    stage (:func:`stage_modules` of the backbone) at each resolution (ResNet-18: ``layer1`` ..
    ``layer4``), grids under ``min_side`` left out; for a ViT, the automatic layer only (every block
    has the same grid)."""
    if getattr(model, "family", "cnn") == "vit":
        return [find_target_layer(model, input_size)]
    backbone = getattr(model, "backbone", model)
    prefix = "backbone" if backbone is not model else ""
    stages = {n for n, _ in stage_modules(backbone, prefix) if not n.endswith("<own>")}
    last_at: dict[tuple[int, int], str] = {}
    for name, shape in _spatial_outputs(model, input_size):
        if name in stages and len(shape) == 4 and min(shape[-2:]) >= min_side:
            last_at[(shape[-2], shape[-1])] = name
    chosen = list(dict.fromkeys(last_at.values()))
    return chosen or [find_target_layer(model, input_size)]

"""Uncertainty heatmaps: how much the explanation itself moves under the method's randomness.

For a selected image, Grad-CAM (through :class:`chestxai.explain.explainer.Explainer`, the same
batched call ``explain`` uses) is computed once per stochastic sample, and the per-pixel mean and
standard deviation are reported:

* **MC dropout**: the image is repeated ``passes`` times in one batch while the dropout layers
  sample (a forward pre-hook re-enables them, because pytorch-grad-cam puts the model in eval
  mode when it builds its CAM object); batch norm stays in eval throughout;
* **TTA**: Grad-CAM on each augmented view, mapped back through the inverse affine transform
  (:func:`chestxai.uncertainty.tta.unwarp`); each pixel's mean/std weights every view by how much
  of that pixel it saw, so borders a shifted view did not cover do not count as zeros;
* **ensemble**: one Grad-CAM per member, weighted by the member weights.

Each CAM is min-max scaled to [0, 1] by the library before the statistics are taken.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from chestxai.explain.explainer import Explainer
from chestxai.explain.overlay import overlay_heatmap
from chestxai.uncertainty.forward import member_inputs
from chestxai.uncertainty.mc_dropout import dropout_active, dropout_modules
from chestxai.uncertainty.tta import augmented_views, normalise, to_unit, tta_params, unwarp


@contextmanager
def _dropout_on_every_forward(model: torch.nn.Module) -> Iterator[None]:
    """Re-enable the dropout layers at the start of every forward (the CAM library calls eval())."""

    def hook(module, inputs):
        for _, m in dropout_modules(module, active_only=False):
            m.train(True)

    handle = model.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _weighted_stats(maps: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``K x B x H x W`` maps and ``K x B x H x W`` (or broadcastable) weights -> mean, std ``B x H x W``."""
    w = np.broadcast_to(weights, maps.shape).astype(np.float64)
    total = np.maximum(w.sum(axis=0), 1e-12)
    mean = (w * maps).sum(axis=0) / total
    var = (w * (maps - mean[None]) ** 2).sum(axis=0) / total
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


def _explain(model, x: torch.Tensor, indices: Sequence[int], batch_size: int) -> np.ndarray:
    explainer = Explainer(model, "gradcam")
    out = [
        explainer.explain(x[s : s + batch_size], list(indices[s : s + batch_size]))
        for s in range(0, len(x), batch_size)
    ]
    return np.concatenate(out)


def mc_dropout_cams(
    model,
    x: torch.Tensor,
    indices: Sequence[int],
    passes: int = 30,
    seed: int = 0,
    dropout: float | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (``B x S x S``) of Grad-CAM over ``passes`` dropout samples of model input ``x``."""
    b = len(x)
    devices = [x.device] if x.device.type == "cuda" else []
    with dropout_active(model, dropout), _dropout_on_every_forward(model), torch.random.fork_rng(devices):
        torch.manual_seed(int(seed))
        reps = x.repeat(int(passes), 1, 1, 1)  # pass-major: row k*B + i is pass k of image i
        maps = _explain(model, reps, list(indices) * int(passes), batch_size)
    maps = maps.reshape(int(passes), b, *maps.shape[1:])
    return _weighted_stats(maps, np.ones((1, 1, 1, 1)))


def tta_cams(
    model,
    x: torch.Tensor,
    preprocess: dict,
    indices: Sequence[int],
    passes: int = 30,
    seed: int = 0,
    draws: np.ndarray | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of Grad-CAM over ``passes`` augmented views, each mapped back to the image frame.

    ``draws``: each image's position in the set it was predicted in (the same views as prediction)."""
    b = len(x)
    params = tta_params(passes, b, seed, draws=draws)  # K x B x 7
    views = normalise(augmented_views(to_unit(x, preprocess), params.to(x.device)), preprocess)
    maps = _explain(model, views, list(indices) * int(passes), batch_size)
    back, cover = unwarp(maps, params.reshape(-1, params.shape[-1]))
    shape = (int(passes), b, *back.shape[1:])
    return _weighted_stats(back.reshape(shape), cover.reshape(shape))


def ensemble_cams(
    models: Sequence,
    x: torch.Tensor,
    indices: Sequence[int],
    weights: Sequence[float],
    batch_size: int = 64,
    preprocess: Sequence[dict] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and std of the members' Grad-CAMs (``preprocess``: each member's, as the API)."""
    inputs = member_inputs(x, preprocess, len(models))
    maps = np.stack(
        [_explain(m, xi, list(indices), batch_size) for m, xi in zip(models, inputs, strict=True)]
    )
    w = np.asarray(weights, dtype=np.float64).reshape(-1, 1, 1, 1)
    return _weighted_stats(maps, w)


def write_heatmap_figure(image: np.ndarray, mean: np.ndarray, std: np.ndarray, path: Path) -> dict:
    """One PNG per case: the image | mean Grad-CAM overlay | std overlay (scaled by its own max,
    returned as ``std_max`` so the scale is never lost)."""
    from PIL import Image

    img = np.asarray(image)
    size = int(mean.shape[-1])
    if img.shape[-1] != size:
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    std_max = float(std.max())
    gray = np.repeat(img[..., None], 3, axis=2)
    panels = [gray, overlay_heatmap(img, mean), overlay_heatmap(img, std / std_max if std_max > 0 else std)]
    scale = max(1, 160 // size)  # tiny (28 px) images get enlarged, nearest neighbour
    strip = np.concatenate(panels, axis=1).repeat(scale, axis=0).repeat(scale, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip.astype(np.uint8)).save(path)
    return {"std_max": std_max, "std_mean": float(std.mean())}

"""Test-time augmentation: the training augmentation family applied at inference, seeded.

The transforms are exactly training's (:class:`chestxai.data.augment.AugmentConfig` defaults:
small rotation, shift and scale, brightness/contrast; **no horizontal flip**, chest anatomy is
not mirror-symmetric), drawn by the same keyed generator (:func:`chestxai.data.dataset.augment_params`)
with ``epoch = pass`` and ``draw = the image's position`` (``draw_offset + i``), so an image gets
the same ``N`` views whatever the batch it is in.

The model takes normalised input, but augmentation works on ``[0, 1]`` images (borders are
filled with black = air): the input ``x`` is mapped back with the checkpoint's ``preprocess``
(``x * std + mean``), augmented, and normalised again.

For heatmaps, :func:`unwarp` maps a map computed on an augmented view back into the original
image's frame (the inverse affine transform; pixels the view did not cover get weight 0).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chestxai.data.augment import AugmentConfig, apply_params
from chestxai.data.dataset import augment_params
from chestxai.uncertainty.cancel import StopCheck, check_stop, chunk

_MAX_ELEMENTS = 1 << 24


def tta_params(
    passes: int,
    n: int,
    seed: int,
    draw_offset: int = 0,
    config: AugmentConfig | None = None,
    draws: np.ndarray | None = None,
) -> torch.Tensor:
    """``passes x n x 7`` augmentation parameters (pass-major), a pure function of the arguments:
    image ``i`` is draw ``draw_offset + i`` (or ``draws[i]``, its position in the whole image set)."""
    config = config or AugmentConfig()
    if draws is None:
        draws = np.arange(draw_offset, draw_offset + n, dtype=np.int64)
    return torch.stack([augment_params(config, int(seed), k, draws) for k in range(int(passes))])


def augmented_views(x_unit: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """``B x 1 x S x S`` images in [0, 1] and ``K x B x 7`` parameters -> ``K*B x 1 x S x S`` views."""
    k = params.shape[0]
    rep = x_unit.repeat(k, 1, 1, 1)
    return apply_params(rep, params.reshape(-1, params.shape[-1]))


def to_unit(x: torch.Tensor, preprocess: dict) -> torch.Tensor:
    """Model input back to [0, 1] pixels (the inverse of :func:`chestxai.models.preprocess.to_input`)."""
    return (x * float(preprocess["std"]) + float(preprocess["mean"])).clamp(0.0, 1.0)


def normalise(x_unit: torch.Tensor, preprocess: dict) -> torch.Tensor:
    return (x_unit - float(preprocess["mean"])) / float(preprocess["std"])


@torch.inference_mode()
def tta_samples(
    model: nn.Module,
    x: torch.Tensor,
    preprocess: dict,
    passes: int = 30,
    seed: int = 0,
    draw_offset: int = 0,
    config: AugmentConfig | None = None,
    should_stop: StopCheck = None,
) -> torch.Tensor:
    """``passes x B x L`` probabilities of the model (in eval mode) on ``passes`` augmented views
    of the normalised model input ``x``; ``should_stop`` is asked before each chunk of passes
    (:mod:`.cancel`)."""
    if int(passes) < 1:
        raise ValueError(f"--passes must be >= 1, got {passes}")
    was_training = model.training
    model.eval()
    try:
        params = tta_params(passes, len(x), seed, draw_offset, config)
        unit = to_unit(x, preprocess)
        step = max(1, min(int(passes), _MAX_ELEMENTS // max(unit[0].numel() * len(x) * 16, 1)))
        step = chunk(step, should_stop)
        out = []
        for start in range(0, int(passes), step):
            check_stop(should_stop)
            views = augmented_views(unit, params[start : start + step].to(x.device))
            logits = model(normalise(views, preprocess))
            out.append(model.probabilities(logits).view(-1, len(x), logits.shape[-1]))
        return torch.cat(out).float()
    finally:
        model.train(was_training)


def affine_theta(params: torch.Tensor) -> torch.Tensor:
    """``n x 2 x 3`` output->input sampling matrices of :func:`chestxai.data.augment.apply_params`
    (same formula; ``tests/uncertainty/test_tta.py`` checks the two warps agree)."""
    angle, tx, ty, scale, flip = params[:, :5].to(torch.float32).unbind(1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)


def inverse_theta(theta: torch.Tensor) -> torch.Tensor:
    """Sampling matrices of the inverse warp: ``i = A o + t`` becomes ``o = A^-1 i - A^-1 t``."""
    a_inv = torch.linalg.inv(theta[:, :, :2])
    return torch.cat([a_inv, -(a_inv @ theta[:, :, 2:])], dim=2)


def unwarp(maps: torch.Tensor | np.ndarray, params: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Maps ``n x H x W`` computed on augmented views (``params`` ``n x 7``) -> (maps in the original
    frame, coverage weights in [0, 1]: how much of each pixel the view saw)."""
    m = torch.as_tensor(np.asarray(maps, dtype=np.float32))[:, None]
    theta = affine_theta(params)

    def warp(t: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(th, list(t.shape), align_corners=False)
        return F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    inverse = inverse_theta(theta)
    back = warp(m, inverse)
    # coverage: what the view saw of the image (forward warp of ones), brought back the same way
    cover = warp(warp(torch.ones_like(m), theta), inverse)
    return back[:, 0].numpy(), cover[:, 0].numpy()

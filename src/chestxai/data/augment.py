"""Training augmentation on tensors: one affine warp (rotation, translation, scale) + brightness/contrast.

Why on tensors, batched: the cache already holds resized uint8 images, so the only per-step work
left is augmentation. Rotation, translation and scale compose into one 2x3 matrix per image and
one ``grid_sample`` call warps the whole batch, on CPU or on the GPU next to the model.

Why no horizontal flip by default: chest anatomy is not mirror-symmetric (heart on the left,
situs inversus is a finding), so a flipped film is a different, rarer image; enable ``hflip`` only
knowingly. Borders exposed by the warp are filled with 0 (black = air, the X-ray background), so
augment images in ``[0, 1]`` *before* mean/std normalisation.

No randomness lives here: :func:`params_from_uniform` maps uniforms to parameters and
:func:`apply_params` applies them. The uniforms come from one keyed generator,
:func:`chestxai.data.dataset.augment_params` (a pure function of seed, epoch and draw), computed on
CPU and moved to the images' device, so a seed gives the same augmentation on CPU and GPU, for
any batch size, worker or rank count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (each drawn uniformly per image).

    ``rotate``: degrees, +-. ``translate``: fraction of the image size, +- per axis.
    ``scale``: (min, max) zoom factor. ``brightness``: additive shift +-. ``contrast``: factor
    ``1 +- contrast`` around the image mean. ``hflip``: probability 0.5 of a mirror when True.
    """

    rotate: float = 7.0
    translate: float = 0.05
    scale: tuple[float, float] = (0.95, 1.05)
    brightness: float = 0.1
    contrast: float = 0.1
    hflip: bool = False

    def __post_init__(self) -> None:
        if self.rotate < 0 or self.translate < 0 or self.brightness < 0 or self.contrast < 0:
            raise ValueError(f"AugmentConfig ranges must be >= 0, got {self}")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"AugmentConfig.scale must be (min, max) with 0 < min <= max, got {self.scale}")


N_PARAMS = 7  # angle, tx, ty, scale, flip, brightness, contrast


def params_from_uniform(u: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """Map ``n x 7`` uniforms in [0, 1) to parameters (angle rad, tx, ty, scale, flip +-1, brightness, contrast).

    Split from the drawing so that the uniforms can be a pure function of a key
    (:func:`chestxai.data.dataset.augment_params` derives them from ``(seed, epoch, draw)``).
    """
    u = u.to(torch.float32)

    def span(col: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * u[:, col]

    r = math.radians(config.rotate)
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if config.hflip else torch.ones(len(u))
    return torch.stack(
        [
            span(0, -r, r),
            span(1, -config.translate, config.translate),
            span(2, -config.translate, config.translate),
            span(3, *config.scale),
            flip,
            span(5, -config.brightness, config.brightness),
            span(6, 1 - config.contrast, 1 + config.contrast),
        ],
        dim=1,
    )


def _sampling_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` computed separably.

    Each output coordinate is ``a * x + (b * y + t)``: a ``B x W x 2`` row term plus a
    ``B x H x 2`` column term, broadcast into the contiguous grid by one addition. Several times
    faster than ``affine_grid`` on CPU, which builds a ``B x H x W x 3`` base grid and multiplies it.
    """
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    along_x = theta[:, None, :, 0] * xs[None, :, None]  # B x W x 2
    along_y = theta[:, None, :, 1] * ys[None, :, None] + theta[:, None, :, 2]  # B x H x 2
    return along_x[:, None, :, :] + along_y[:, :, None, :]  # B x H x W x 2


def apply_params(x: torch.Tensor, params: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Warp and re-light a batch with ``params`` (``n x 7``, see :func:`params_from_uniform`); returns [0, 1] images.

    ``x``: ``B x C x H x W`` float whose values times ``gain`` lie in [0, 1] (``gain=1/255`` lets a
    caller pass uint8-valued floats and save a pass over the batch: warping is linear).
    """
    if x.ndim != 4:
        raise ValueError(f"augment expects a B x C x H x W batch, got shape {tuple(x.shape)}")
    p = params.to(device=x.device, dtype=x.dtype)
    angle, tx, ty, scale, flip, bright, contrast = p.unbind(1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # output -> input sampling grid in normalised [-1, 1] coordinates (inverse of the image motion)
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    out = F.grid_sample(
        x, _sampling_grid(theta, *x.shape[-2:]), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    # contrast c around the image mean m, then brightness b: x * c + (m * (1 - c) + b), one fused pass
    c = contrast.view(-1, 1, 1, 1)
    offset = out.mean(dim=(1, 2, 3), keepdim=True) * gain * (1 - c) + bright.view(-1, 1, 1, 1)
    return torch.addcmul(offset, out, c * gain, out=out).clamp_(0.0, 1.0)

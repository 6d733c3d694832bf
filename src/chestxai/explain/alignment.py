"""Put each feature-map cell back over the pixels it sees: a heatmap alignment fix for strided CNNs.

pytorch-grad-cam (like most CAM code) upsamples an ``h x w`` map to the ``S x S`` input with a
bilinear resize that places cell ``i`` at pixel ``(i + 0.5) * S / h - 0.5``: the centre of the
``S / h`` pixel block the cell *would* cover if the network tiled the image. A ResNet does not:
its 'same'-padded stride-2 convolutions and max pool centre output ``i`` on input ``2 i``, so cell
``i`` of a stride-``s`` stage sees pixels centred on ``s * i``. The resize therefore draws every map
``(s - 1) / 2`` px down and right of where the evidence is: 1.5 px at ``layer1``, 3.5 at
``layer2``, 7.5 at ``layer3`` and 15.5 px at ``layer4`` of a ResNet (measured below). On the NIH
lesion benchmark (128 px) that alone moved HiResCAM's ``layer2`` peaks off 15% of the lesions.

Rather than hard-code the arithmetic per architecture, :func:`grid_shift` *measures* where a cell
looks: the centroid of ``|d cell / d input|`` (summed over channels, averaged over a few seeded
random inputs) for the cell nearest the image centre, whose receptive field the image border
truncates symmetrically. The shift that moves the resized map onto those centres is applied to the
map (:func:`shift_maps`). Vision transformers are left alone: a patch token is exactly the block
the resize assumes, and attention mixes globally, so a gradient centroid would say nothing.
``Explainer(..., align=False)`` (``chestxai explain --no-align``) gives pytorch-grad-cam's maps
unchanged.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy import ndimage
from torch import nn

log = logging.getLogger(__name__)

#: random inputs averaged for the centroid (seeded; their values do not matter, only the geometry)
PROBES = 16


def _feature_map(module: nn.Module, model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    seen: list[torch.Tensor] = []

    def hook(_m, _i, out):
        seen.append(out[0] if isinstance(out, (tuple, list)) else out)

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    return seen[-1] if seen and seen[-1].ndim == 4 else None


def grid_shift(
    model: nn.Module, layer: nn.Module, shape: tuple[int, int, int], device
) -> tuple[float, float]:
    """``(rows, cols)`` px to move an input-sized map of ``layer`` so that each cell sits over the
    centre of the pixels it sees (module doc). ``shape``: the model input's ``C x H x W``.
    ``(0, 0)`` when the layer has no spatial map or the measurement is not trustworthy."""
    channels, height, width = (int(v) for v in shape)
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        with torch.enable_grad():
            x = torch.randn(PROBES, channels, height, width, generator=gen).to(device).requires_grad_(True)
            fmap = _feature_map(layer, model, x)
            if fmap is None or min(fmap.shape[-2:]) < 2:
                return 0.0, 0.0
            h, w = fmap.shape[-2:]
            r, c = h // 2, w // 2
            (grad,) = torch.autograd.grad(fmap[:, :, r, c].sum(), x)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    weight = grad.abs().sum(dim=(0, 1)).double().cpu().numpy()
    total = weight.sum()
    if not np.isfinite(total) or total <= 0:
        return 0.0, 0.0
    rows, cols = np.mgrid[0:height, 0:width]
    centre = ((weight * rows).sum() / total, (weight * cols).sum() / total)
    drawn = ((r + 0.5) * height / h - 0.5, (c + 0.5) * width / w - 0.5)  # where the resize puts the cell
    shift = (float(centre[0] - drawn[0]), float(centre[1] - drawn[1]))
    strides = (height / h, width / w)
    if any(abs(s) > stride for s, stride in zip(shift, strides, strict=True)):
        log.warning(
            "heatmap alignment: measured shift %s exceeds a cell (%s px); not aligning", shift, strides
        )
        return 0.0, 0.0
    # sub-0.25 px is measurement noise (and a no-op worth skipping)
    return tuple(round(s * 2) / 2 if abs(s) >= 0.25 else 0.0 for s in shift)  # type: ignore[return-value]


def shift_maps(maps: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``N x H x W`` maps moved by ``shift`` px (bilinear, edges repeated), each re-scaled to [0, 1]."""
    if not any(shift):
        return maps
    out = np.empty_like(maps)
    for i, m in enumerate(maps):
        moved = ndimage.shift(m, shift, order=1, mode="nearest")
        lo, hi = float(moved.min()), float(moved.max())
        out[i] = (moved - lo) / (hi - lo) if hi > lo else moved
    return out

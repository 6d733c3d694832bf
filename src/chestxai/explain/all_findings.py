"""Grad-CAM of every finding of a multi-label head in one forward, the arithmetic kept in torch.

:meth:`Explainer.explain` gives one map per (image, output) pair through pytorch-grad-cam: for
``B`` images x ``L`` findings that is a forward and backward of ``B x L`` images, and the CAM
arithmetic (min-max, resize, alignment shift) runs in NumPy on the host, one map at a time - the
round trip GPU users complain about. Here the batch goes forward once, each finding's gradient at
the target layer comes from one backward through what lies after the layer (only the head when
the layer is the final feature map), and weighting, ReLU, scaling, resizing and the alignment
shift stay on the model's device. The maps are the Explainer's own (tests/explain hold them to it
within 1e-4): the same layer, pytorch-grad-cam's scaling order (min-max, resize, min-max) and
:mod:`chestxai.explain.alignment`'s shift.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chestxai.explain.explainer import Explainer, frozen_parameters
from chestxai.explain.methods import UnsupportedMethodError


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's ``scale_cam_image`` per map (last two dims): ``(m - min) / (1e-7 + max)``."""
    flat = maps.flatten(-2)
    flat = flat - flat.amin(-1, keepdim=True)
    return (flat / (1e-7 + flat.amax(-1, keepdim=True))).view_as(maps)


def _shift(maps: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    """``alignment.shift_maps`` on the device: moved by ``shift`` px (bilinear, edges repeated),
    each re-scaled to [0, 1] (a constant map is left as it is)."""
    if not any(shift):
        return maps
    n, h, w = maps.shape
    theta = torch.zeros(n, 2, 3, dtype=maps.dtype, device=maps.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2 * shift[1] / max(w - 1, 1)  # output (r, c) reads input (r - dy, c - dx)
    theta[:, 1, 2] = -2 * shift[0] / max(h - 1, 1)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=True)
    moved = F.grid_sample(maps[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)[
        :, 0
    ]
    flat = moved.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    scaled = torch.where(hi > lo, (flat - lo) / (hi - lo).clamp_min(1e-30), flat)
    return scaled.view_as(moved)


def _finding_gradients(logits: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """``B x L x C x h x w``: d(logit k of each image) / d(activations) for every finding k, as one
    batched backward (``is_grads_batched``: vmap over the L one-hot output gradients); where an op
    has no batching rule, one backward per finding instead."""
    n_out = logits.shape[1]
    onehot = torch.eye(n_out, dtype=logits.dtype, device=logits.device)[:, None, :].expand(
        n_out, *logits.shape
    )
    try:
        (grads,) = torch.autograd.grad(logits, act, onehot, retain_graph=True, is_grads_batched=True)
    except RuntimeError:  # no vmap rule for some op on the way back to the layer
        grads = torch.stack(
            [torch.autograd.grad(logits, act, onehot[k], retain_graph=True)[0] for k in range(n_out)]
        )
    return grads.transpose(0, 1)


def gradcam_all_findings(explainer: Explainer, x: torch.Tensor) -> torch.Tensor:
    """``B x L x H x W`` Grad-CAM maps in [0, 1] of every output of ``explainer.model`` for the input
    batch ``x`` (``B x C x H x W``), on ``x``'s device; what ``explainer.explain`` gives for each
    (image, output) pair. Gradient Grad-CAM on a CNN only (the method and layer of ``explainer``)."""
    if explainer.method != "gradcam" or explainer.reshape is not None:
        raise UnsupportedMethodError(
            f"all-findings maps are Grad-CAM on a CNN; {explainer.method} on this model goes through "
            "Explainer.explain (one output per image)"
        )
    model, grabbed = explainer.model, {}
    shift = explainer.last_shift = explainer.shift_for(x)
    handle = explainer.layer.register_forward_hook(lambda _m, _i, out: grabbed.__setitem__("a", out))
    try:
        with frozen_parameters(model), torch.enable_grad():
            logits = model(x.detach().requires_grad_(True))  # gradients reach the layer, not weights
            act = grabbed["a"]
            grads = _finding_gradients(logits, act)
    finally:
        handle.remove()
    act = act.detach()
    weights = grads.mean((-2, -1))  # B x L x C: the gradients' spatial means
    cam = torch.relu(torch.einsum("blc,bchw->blhw", weights, act).float())
    cam = _minmax(cam)  # the library's order: per-layer min-max, resize, clip at 0, min-max again
    cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    cam = _minmax(cam.clamp_min(0))
    b, n_out, h, w = cam.shape
    return _shift(cam.reshape(b * n_out, h, w), shift).reshape(b, n_out, h, w)

"""Explainer: a model, a method and a target layer bound together; batched heatmaps out.

One ``explain`` call is one pytorch-grad-cam call on the whole batch: one forward and (for
gradient methods) one backward, whatever the batch size. While it runs, the model's parameters
are set not to require gradients and the *input* is made to require them instead: CAMs need
gradients at the target layer only, so the weight gradients a training backward computes would
be wasted work (and a frozen backbone would otherwise yield no gradients at all). Flags are
restored and the library's hooks released when the call returns, even on error; nothing is left
registered on the model between calls.

Maps are then moved so that each feature-map cell sits over the pixels it sees
(:mod:`chestxai.explain.alignment`; ``align=False`` keeps pytorch-grad-cam's placement).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from chestxai.explain.alignment import grid_shift, shift_maps
from chestxai.explain.layers import Trace, resolve_layer, trace_layers
from chestxai.explain.methods import CONTROL, UnsupportedMethodError, configure
from chestxai.explain.reshape import TokenGridReshape, token_reshape_for
from chestxai.explain.targets import logit_targets
from chestxai.models.preprocess import to_input

log = logging.getLogger(__name__)


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on every parameter; restores the previous flags."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Explainer:
    """Heatmaps of ``method`` for ``model`` at ``layer`` (a dotted name; ``None`` = automatic).

    Generic plumbing only: which layer, ViT reshape, hooks, batching. What is particular to a
    method (its knobs, which models it applies to, how its ``BaseCAM`` is built) lives in its
    :class:`~chestxai.explain.methods.Method`; ``options`` sets its knobs (e.g.
    ``{"batch_size": 16}`` for ScoreCAM). ``seed`` seeds the generator handed to the method (the
    random control draws from it).
    """

    def __init__(
        self,
        model: nn.Module,
        method: str = "gradcam",
        layer: str | None = None,
        seed: int = 0,
        options: Mapping[str, Any] | None = None,
        align: bool = True,
    ):
        self.model = model
        self.align = align
        self._shifts: dict[tuple[int, ...], tuple[float, float]] = {}
        #: the alignment shift (rows, cols px) applied to the last explained batch; (0, 0) before any
        self.last_shift: tuple[float, float] = (0.0, 0.0)
        self.method = method
        self.spec = configure(method, options)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._trace: Trace | None = None
        if layer is None:  # CAM / PCAM are defined on the final feature map only
            self.layer_name = self.trace.final if self.spec.final_layer_only else self.trace.default
        else:
            self.layer_name, _ = resolve_layer(model, layer, self._trace)
            if self.spec.final_layer_only and self.layer_name != self.trace.final:
                raise UnsupportedMethodError(
                    f"{method} is defined on the final feature map ({self.trace.final}), not on "
                    f"{self.layer_name}; drop --layer for this method"
                )
        self.layer = dict(model.named_modules())[self.layer_name]
        self.reshape: TokenGridReshape | None = (
            token_reshape_for(model.backbone) if model.family == "vit" else None
        )
        self.spec.check(model)

    def shift_for(self, x: torch.Tensor) -> tuple[float, float]:
        """The alignment shift (px) for inputs shaped like ``x``: measured once per input shape;
        ``(0, 0)`` for ViTs, the random control and ``align=False``."""
        if not self.align or self.reshape is not None or self.method == CONTROL:
            return 0.0, 0.0
        key = tuple(x.shape[1:])
        if key not in self._shifts:
            self._shifts[key] = grid_shift(self.model, self.layer, key, x.device)
            log.debug("%s at %s: heatmaps shifted by %s px", self.method, self.layer_name, self._shifts[key])
        return self._shifts[key]

    @property
    def trace(self) -> Trace:
        if self._trace is None:
            self._trace = trace_layers(self.model)
        return self._trace

    def explain(self, x: torch.Tensor, indices: Sequence[int]) -> np.ndarray:
        """``x``: model input ``B x C x H x W``; ``indices[i]``: the output explained for image i.

        Returns float32 ``B x H x W`` heatmaps in ``[0, 1]`` (each min-max scaled, as the library does).
        """
        if len(indices) != len(x):
            raise ValueError(f"got {len(x)} images but {len(indices)} target indices; give one per image")
        n_out = int(getattr(self.model, "num_labels", 0)) or None
        bad = [int(i) for i in indices if n_out is not None and not 0 <= int(i) < n_out]
        if bad:
            raise ValueError(f"target indices {bad} out of range for a model with {n_out} outputs")
        shift = self.last_shift = self.shift_for(x)
        was_training = self.model.training
        with frozen_parameters(self.model):
            cam = self.spec.build(self.model, [self.layer], self.reshape, self.rng)
            try:
                cam.compute_input_gradient = self.spec.gradients
                heatmaps = cam(x, logit_targets(indices))
            finally:
                cam.activations_and_grads.release()
                cam.outputs = None
                self.model.train(was_training)
        return shift_maps(np.asarray(heatmaps, dtype=np.float32), shift)

    def explain_images(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        indices: Sequence[int],
        preprocess: dict,
        batch_size: int = 16,
        progress: bool = False,
    ) -> np.ndarray:
        """uint8 images (any sizes; each resized as the checkpoint says) -> ``N x S x S`` heatmaps."""
        device = next(self.model.parameters()).device
        size = int(preprocess["size"])
        out = np.zeros((len(images), size, size), np.float32)
        starts = range(0, len(images), batch_size)
        for start in tqdm(starts, desc=self.method, disable=not progress, leave=False):
            chunk = [
                np.array(im) for im in images[start : start + batch_size]
            ]  # copies: memmaps are read-only
            x = torch.cat([to_input(im[None], preprocess) for im in chunk]).to(device)
            out[start : start + len(chunk)] = self.explain(x, indices[start : start + len(chunk)])
        return out

"""``predict_with_uncertainty``: one call from a model and a batch to per-label uncertainty.

The library entry point the CLI stage (:mod:`.stage`) and the HTTP service both use, so they
cannot disagree. Input ``x`` is always the **model input** (``B x 1 x S x S``, already
preprocessed: resized and normalised by :func:`chestxai.models.preprocess.to_input`). The method
is looked up in the registry of :mod:`.methods` (one module each); what the registered ones need:

* ``mc-dropout``: ``passes`` dropout samples (:mod:`.mc_dropout`); a model without active dropout
  needs ``dropout=p`` (inserted at inference, reported in ``dropout_source``);
* ``tta``: ``passes`` augmented views (:mod:`.tta`); augmentation works on [0, 1] pixels, so it
  needs the checkpoint's ``preprocess`` dict (``mean``/``std``) to undo and redo the
  normalisation of ``x``; ``draw_offset`` keys each image's views by its position in a larger set;
* ``ensemble``: ``model`` is a sequence of models of one input size, one sample each, averaged
  with ``weights`` (default uniform); ``x`` is the first member's input, and ``preprocess`` (a list,
  one dict per member) lets every member renormalise the same pixels with its own mean/std.

Returns numpy arrays, each ``B x L`` (float64): ``mean``, ``std``, ``entropy``,
``expected_entropy``, ``mutual_information`` (see :mod:`.measures` for the definitions;
for TTA the "mutual information" measures disagreement between views, not model uncertainty),
plus ``samples`` (``K x B x L``) and ``deterministic`` (the plain eval-mode prediction of the
(first) model, for calibration side by side).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch

from chestxai.uncertainty.cancel import check_stop
from chestxai.uncertainty.methods import check_method


def predict_with_uncertainty(
    model,
    x: torch.Tensor,
    method: str = "mc-dropout",
    passes: int = 30,
    seed: int = 0,
    dropout: float | None = None,
    *,
    preprocess: dict | None = None,
    draw_offset: int = 0,
    weights: Sequence[float] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, np.ndarray]:
    """Per-image, per-label mean probability and uncertainty of ``model`` on model input ``x``
    (see the module docstring for what each method needs). Raises ValueError before any forward
    when the request cannot be met (unknown method, no dropout, ``passes < 1``, TTA without
    ``preprocess``): each registered method (:mod:`.methods`) checks its own request. ``should_stop``, when given,
    is asked between chunks of passes (then a few passes each); when it answers True the sampling
    raises :class:`~chestxai.uncertainty.cancel.SamplingCancelled` (``serve`` stops a timed-out
    request's passes this way)."""
    chosen = check_method(method, passes)
    stop = {}
    if should_stop is not None:
        if "should_stop" in inspect.signature(chosen.sample).parameters:
            stop["should_stop"] = should_stop
        else:
            check_stop(should_stop)  # a method without the hook is asked once, before it runs
    return chosen.sample(
        model, x, passes=passes, seed=seed, dropout=dropout, preprocess=preprocess,
        draw_offset=draw_offset, weights=weights, **stop,
    )  # fmt: skip

"""``predict_with_uncertainty``: one call from a model and a batch to per-label uncertainty.

The library entry point the CLI stage (:mod:`.stage`) and the HTTP service both use, so they
cannot disagree. Input ``x`` is always the **model input** (``B x 1 x S x S``, already
preprocessed: resized and normalised by :func:`chestxai.models.preprocess.to_input`):

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

from collections.abc import Sequence

import numpy as np
import torch

from chestxai.uncertainty.mc_dropout import check_dropout, mc_dropout_predict
from chestxai.uncertainty.measures import summarize_samples
from chestxai.uncertainty.tta import normalise, to_unit, tta_samples

METHODS = ("mc-dropout", "tta", "ensemble")


def check_method(method: str, passes: int) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown uncertainty method {method!r}; choose --method from {', '.join(METHODS)}")
    if method != "ensemble" and (not isinstance(passes, int) or passes < 1):
        raise ValueError(f"--passes must be a whole number >= 1, got {passes!r}")


@torch.inference_mode()
def _deterministic(model, x: torch.Tensor) -> np.ndarray:
    was = model.training
    model.eval()
    try:
        return model.probabilities(model(x)).float().cpu().numpy()
    finally:
        model.train(was)


def member_inputs(x: torch.Tensor, preprocess, n: int) -> list[torch.Tensor]:
    """Each ensemble member's input: ``x`` (the first member's) renormalised with member ``k``'s
    mean/std when ``preprocess`` lists them, else ``x`` for all."""
    if preprocess is None or isinstance(preprocess, dict):
        return [x] * n
    if len(preprocess) != n:
        raise ValueError(f"{len(preprocess)} preprocess dicts for {n} ensemble members")
    unit = to_unit(x, preprocess[0])
    return [normalise(unit, p) for p in preprocess]


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
) -> dict[str, np.ndarray]:
    """Per-image, per-label mean probability and uncertainty of ``model`` on model input ``x``
    (see the module docstring for what each method needs). Raises ValueError before any forward
    when the request cannot be met (no dropout, ``passes < 1``, TTA without ``preprocess``)."""
    check_method(method, passes)
    if method == "ensemble":
        models = list(model) if isinstance(model, (list, tuple)) else None
        if not models:
            raise ValueError("method 'ensemble' needs a sequence of models (the ensemble's members)")
        inputs = member_inputs(x, preprocess, len(models))
        with torch.inference_mode():
            samples = np.stack([_deterministic(m, xi) for m, xi in zip(models, inputs, strict=True)])
        det = samples[0]
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        out = summarize_samples(samples, w)
        return {**out, "samples": samples, "deterministic": det}
    if method == "mc-dropout":
        check_dropout(model, dropout)
        samples_t, det_t, source = mc_dropout_predict(model, x, passes, seed, dropout)
        samples, det = samples_t.cpu().numpy(), det_t.cpu().numpy()
        return {
            **summarize_samples(samples),
            "samples": samples,
            "deterministic": det,
            "dropout_source": np.asarray(source),
        }
    if preprocess is None:
        raise ValueError(
            "method 'tta' needs preprocess= (the checkpoint's {'size', 'mean', 'std'}) to undo the "
            "normalisation of x before augmenting"
        )
    samples = tta_samples(model, x, preprocess, passes, seed, draw_offset).cpu().numpy()
    return {**summarize_samples(samples), "samples": samples, "deterministic": _deterministic(model, x)}

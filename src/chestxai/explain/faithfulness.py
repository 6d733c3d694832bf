"""Faithfulness without ground truth: does removing what the heatmap points at change the output?

* **Deletion / insertion** (Petsiuk et al., RISE, 2018): pixels are moved, hottest first, in
  ``steps`` equal shares, from one image to another while the target probability is recorded.
  Deletion goes from the image to a baseline (a faithful map makes the probability fall fast:
  *low* AUC is good); insertion goes from the baseline to the image (fast rise: *high* AUC is
  good). pytorch-grad-cam has no such curves, so they are written here; the baseline is a
  Gaussian-blurred copy of the image (RISE's insertion canvas), which removes local evidence
  without pasting out-of-distribution black squares into the image.
* **ROAD** (Rong et al., ICML 2022) is the library's: ``ROADCombined`` imputes the removed pixels
  from their neighbours (so the model does not just react to the removal's shape) and returns
  ``(LeRF - MoRF) / 2`` averaged over percentiles: *higher* is more faithful.

Scores are **logits** by default (``score="logit"``; ``"probability"`` is kept for comparison).
A confident model's probability is saturated (p = 1.00 for most PneumoniaMNIST test images): it
stays at 1 while half the evidence is removed, so every map, random ones included, gets the same
flat curve, and the curves compare nothing. The logit keeps moving. Curves and AUCs are then in
logit units: compare a method with the random control on the same images (a paired difference),
not across runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from pytorch_grad_cam.metrics.road import ROADCombined

from chestxai.explain.targets import logit_targets, probability_targets

#: what the curves and ROAD score: ``logit`` (default) or ``probability``
SCORES = ("logit", "probability")
DEFAULT_SCORE = "logit"

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # inputs M x C x H x W -> scores M x L


def curve_auc(curve: Sequence[float]) -> float:
    """Area under a curve sampled at evenly spaced fractions ``0 .. 1`` (trapezoid rule)."""
    c = np.asarray(curve, dtype=np.float64)
    if len(c) < 2:
        raise ValueError("a curve needs at least two points (steps >= 1)")
    return float((c[:-1] + c[1:]).sum() / 2 / (len(c) - 1))


def pixel_order(heatmap: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Rank of every pixel, hottest = 0, shaped like the heatmap.

    Ties are broken in row-major order, or at random with ``rng``. They matter: a Grad-CAM map is
    zero (ReLU) on most of the image, and removing a tied region top rows first would measure the
    tie-break, not the map.
    """
    flat = np.asarray(heatmap).ravel()
    if rng is None:
        order = np.argsort(-flat, kind="stable")
    else:
        order = np.lexsort((rng.random(flat.size), -flat))
    rank = np.empty_like(order)
    rank[order] = np.arange(flat.size)
    return rank.reshape(np.shape(heatmap))


def untied(heatmaps: np.ndarray, seed: int = 0) -> np.ndarray:
    """Maps with the same pixel order but all values distinct (hottest 1, coldest 0), ties at random.

    pytorch-grad-cam's ROAD removes pixels above a percentile of the map; with ties (the zeros of a
    ReLU'd CAM) a "remove 20%" step silently removes 80%, or everything. Ranks have no ties.
    """
    rng = np.random.default_rng(seed)
    out = np.empty(np.shape(heatmaps), np.float32)
    for i, hm in enumerate(heatmaps):
        n = hm.size
        out[i] = 1.0 - pixel_order(hm, rng) / max(n - 1, 1)
    return out


def perturbation_curves(
    score_fn: ScoreFn,
    start: torch.Tensor,
    end: torch.Tensor,
    heatmaps: np.ndarray,
    indices: Sequence[int],
    steps: int = 20,
    batch_size: int = 64,
    seed: int | None = None,
) -> np.ndarray:
    """``B x (steps+1)`` scores: at step ``k`` the hottest ``k/steps`` of pixels come from ``end``.

    ``start``/``end``: ``B x C x H x W``; ``heatmaps``: ``B x H x W`` at the same size;
    ``indices[i]``: the output scored for image ``i``. Deletion is ``(image, baseline)``,
    insertion ``(baseline, image)``. Inputs are built chunk by chunk, ``batch_size`` at a time.
    Tied heatmap values are ordered row-major, or at random with a ``seed``.
    """
    b, _, h, w = start.shape
    if heatmaps.shape != (b, h, w):
        raise ValueError(
            f"heatmaps {heatmaps.shape} do not match images {tuple(start.shape)}; resize them first"
        )
    counts = torch.as_tensor(np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64))
    rng = np.random.default_rng(seed) if seed is not None else None
    ranks = torch.as_tensor(np.stack([pixel_order(hm, rng) for hm in heatmaps]))
    pairs = [(i, k) for i in range(b) for k in range(steps + 1)]
    curves = np.zeros((b, steps + 1), np.float64)
    for lo in range(0, len(pairs), batch_size):
        chunk = pairs[lo : lo + batch_size]
        img = torch.as_tensor([i for i, _ in chunk])
        take = ranks[img] < counts[[k for _, k in chunk]][:, None, None]  # M x H x W
        x = torch.where(take[:, None].to(start.device), end[img], start[img])
        scores = score_fn(x)
        for row, (i, k) in enumerate(chunk):
            curves[i, k] = float(scores[row, int(indices[i])])
    return curves


def blurred(x: torch.Tensor, sigma_fraction: float = 1 / 16) -> torch.Tensor:
    """Gaussian blur of each image (sigma = ``sigma_fraction`` x image side): the curves' baseline."""
    import cv2

    sigma = max(x.shape[-1], x.shape[-2]) * sigma_fraction
    arr = x.detach().float().cpu().numpy()
    out = np.empty_like(arr)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            out[i, c] = cv2.GaussianBlur(arr[i, c], (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return torch.from_numpy(out).to(x.device)


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"faithfulness score must be one of {', '.join(SCORES)}, got {score!r}")


def model_score_fn(model: torch.nn.Module, score: str = DEFAULT_SCORE) -> ScoreFn:
    """Logits of ``model`` (or its probabilities: sigmoid or softmax as its task says), no gradients."""
    _check_score(score)

    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = model(x)
            return (out if score == "logit" else model.probabilities(out)).float().cpu()

    return fn


def deletion_insertion(
    model: torch.nn.Module,
    x: torch.Tensor,
    heatmaps: np.ndarray,
    indices: Sequence[int],
    steps: int = 20,
    batch_size: int = 64,
    seed: int = 0,
    score: str = DEFAULT_SCORE,
) -> dict[str, np.ndarray]:
    """Per-image deletion and insertion AUCs (and curves) of ``heatmaps`` for ``model`` (ties at
    random), on ``score`` (logits by default)."""
    model.eval()
    base = blurred(x)
    fn = model_score_fn(model, score)
    deletion = perturbation_curves(fn, x, base, heatmaps, indices, steps, batch_size, seed)
    insertion = perturbation_curves(fn, base, x, heatmaps, indices, steps, batch_size, seed)
    return {
        "deletion_auc": np.array([curve_auc(c) for c in deletion]),
        "insertion_auc": np.array([curve_auc(c) for c in insertion]),
        "deletion_curve": deletion,
        "insertion_curve": insertion,
    }


def road_scores(
    model: torch.nn.Module,
    x: torch.Tensor,
    heatmaps: np.ndarray,
    indices: Sequence[int],
    task: str,
    percentiles: Sequence[int] = (20, 40, 60, 80),
    seed: int = 0,
    score: str = DEFAULT_SCORE,
) -> np.ndarray:
    """pytorch-grad-cam's ``ROADCombined`` per image (higher = more faithful), on :func:`untied` maps,
    scoring the logit (``score="logit"``) or the probability of the explained output.

    The library's imputer adds noise from torch's global generator; it runs inside
    ``torch.random.fork_rng`` seeded with ``seed``, so results repeat and the caller's random
    state is left as it was.
    """
    model.eval()
    metric = ROADCombined(percentiles=list(percentiles))
    _check_score(score)
    targets = logit_targets(indices) if score == "logit" else probability_targets(indices, task)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # the library hands torch tensors to NumPy, which warns about a future change (NumPy 2)
        warnings.filterwarnings("ignore", message=".*__array_wrap__.*", category=DeprecationWarning)
        torch.manual_seed(seed)
        scores = metric(x, untied(np.asarray(heatmaps), seed), targets, model)
    return np.asarray(scores, np.float64).reshape(-1)

"""Saliency-map localisation kernels of the field's published protocols: pure functions of arrays.

One heatmap (float, already resized to its image, as CheXlocalize resizes before scoring) and one
boolean ground-truth mask of the same shape. Each kernel names the protocol it follows, and where
the published code makes a choice the paper does not state, the choice is written here:

* **CheXlocalize** (Saporta et al., Nature Machine Intelligence 2022; its public code,
  ``heatmap_to_segmentation.py``, ``eval.py``, ``tune_*_threshold.py``):

  - the map is min-max normalised (``(h - min) / max(h - min)``, float32) before binarising; a
    constant map (theirs divides by zero) binarises to an empty mask here;
  - **Otsu**: the normalised map as ``uint8(255 * m)`` (truncated), OpenCV's Otsu threshold (pixels
    strictly above it), then the external and internal contours of that binary image filled as
    polygons (``RETR_TREE``; single-point contours dropped): holes inside a hot region are filled
    and isolated single pixels vanish, exactly as their segmentation does (:func:`otsu_mask`);
  - a **tuned threshold** keeps ``m > t`` (:func:`threshold_mask`), ``t`` from the grid
    :data:`THRESHOLD_GRID` (their ``np.arange(0.2, .8, .1)``, 0.2 .. 0.8) that maximises the mean IoU
    over the *true-positive slice* of val (IoU undefined when either mask is empty), first maximum
    on ties (:func:`tune_threshold`);
  - the **probability cutoff** empties the predicted mask when the model's probability is below it
    (``p < c``, as their ``heatmap_to_segmentation`` applies it; their tuning script keeps ``p > c``,
    which differs only for a probability exactly on a grid point), tuned per finding on val over
    :data:`CUTOFF_GRID` (0.0 .. 0.8) maximising the mean IoU of the Otsu segmentations over every
    val item with known truth, positives and negatives (:func:`tune_probability_cutoff`);
  - **IoU** of two masks, undefined (NaN, left out of the mean) when both are empty
    (:func:`mask_iou`; ``true_pos_only=False``, the rule of their full-set mIoU);
  - **hit**: the map's argmax (first in row-major order) inside the truth - the pointing game of
    Zhang et al., in :func:`chestxai.explain.localization.pointing_hit` with its pixel tolerance;
  - **percentage decrease** against the human benchmark ``100 (human - method) / human``
    (:func:`percentage_decrease`).

* **Arun et al. 2021** (Radiology: AI): localisation utility = the **area under the
  precision-recall curve of the map's pixels against the mask**, as average precision (step-wise,
  scikit-learn's definition; :func:`pixel_average_precision`).

* **Quantus 0.6** (Hedström et al., JMLR 2023), after Arras et al. 2022: **relevance mass accuracy**
  = the map's mass inside the mask over its total mass (:func:`relevance_mass`); **relevance rank
  accuracy** = the share of the ``K`` highest-valued pixels that lie in the mask, ``K`` the mask's
  size (:func:`relevance_rank`; ties broken by row-major order, where Quantus's unstable sort
  breaks them arbitrarily). Both undefined for an empty mask.

ChestX-ray8's IoBB of a box drawn from the map lives with the box geometry in
:mod:`chestxai.explain.localization` (:data:`~chestxai.explain.localization.IOBB_THRESHOLDS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chestxai.metrics.ranking import RankedScores

#: CheXlocalize's grid of map thresholds tuned on val: their ``np.arange(0.2, .8, .1)``, which float
#: rounding makes seven values, 0.2 .. 0.8 (the last is 0.8000000000000003); rounded to one decimal
#: here, as their tuning script writes them for segmentation
THRESHOLD_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: CheXlocalize's grid of probability cutoffs tuned on val (``np.arange(0, .9, .1)``)
CUTOFF_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def normalise_map(heatmap: np.ndarray) -> np.ndarray:
    """CheXlocalize's min-max normalisation to [0, 1] in float32; a constant map becomes all zeros."""
    h = np.asarray(heatmap, np.float32)
    m = h - h.min() if h.size else h
    peak = float(m.max()) if m.size else 0.0
    return m / np.float32(peak) if peak > 0 else np.zeros_like(m)


def otsu_mask(heatmap: np.ndarray) -> np.ndarray:
    """CheXlocalize's Otsu segmentation of a map (see the module doc): a boolean mask its shape."""
    import cv2
    from PIL import Image, ImageDraw

    m = np.uint8(255 * normalise_map(heatmap))
    maxval = int(m.max()) if m.size else 0
    if maxval == 0:
        return np.zeros(m.shape, bool)
    binary = cv2.threshold(m, 0, maxval, cv2.THRESH_OTSU)[1]
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    contours = contours[0] if len(contours) == 2 else contours[1]
    canvas = Image.new("1", (m.shape[1], m.shape[0]))
    draw = ImageDraw.Draw(canvas)
    for contour in contours:
        if len(contour) > 1:
            draw.polygon([(int(p[0][0]), int(p[0][1])) for p in contour], outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def threshold_mask(heatmap: np.ndarray, threshold: float) -> np.ndarray:
    """CheXlocalize's binarisation at a tuned threshold: the normalised map strictly above it."""
    return normalise_map(heatmap) > np.float32(threshold)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks; NaN when both are empty (CheXlocalize leaves those out of mIoU)."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    union = int(np.logical_or(p, t).sum())
    return float(np.logical_and(p, t).sum() / union) if union else float("nan")


def true_positive_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU on CheXlocalize's true-positive slice: NaN unless both masks have a pixel (threshold tuning)."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() or not t.any():
        return float("nan")
    return mask_iou(p, t)


def pixel_average_precision(heatmap: np.ndarray, truth: np.ndarray) -> float:
    """Arun et al.'s localisation utility: average precision of the map's pixels against the mask.

    Step-wise (scikit-learn's ``average_precision_score``), tied pixel values form one threshold.
    NaN for an empty mask (no positive pixel)."""
    t = np.asarray(truth, bool).ravel()
    if not t.any():
        return float("nan")
    ranked = RankedScores(np.asarray(heatmap, np.float64).ravel(), t.astype(np.float64))
    return float(ranked.average_precision(np.ones((1, t.size)))[0])


def relevance_mass(heatmap: np.ndarray, truth: np.ndarray) -> float:
    """Relevance mass accuracy (Arras et al. 2022; Quantus): mass inside the mask / total mass.

    NaN for an empty mask or a map of zero total mass. Maps are in [0, 1], so no clipping."""
    h, t = np.asarray(heatmap, np.float64), np.asarray(truth, bool)
    total = float(h.sum())
    if not t.any() or total == 0:
        return float("nan")
    return float(h[t].sum() / total)


def relevance_rank(heatmap: np.ndarray, truth: np.ndarray) -> float:
    """Relevance rank accuracy (Arras et al. 2022; Quantus): share of the top-``K`` pixels in the mask.

    ``K`` is the mask's pixel count; the top ``K`` are the highest map values, ties taken in
    row-major order (a stable sort). NaN for an empty mask."""
    h, t = np.asarray(heatmap, np.float64).ravel(), np.asarray(truth, bool).ravel()
    k = int(t.sum())
    if k == 0:
        return float("nan")
    top = np.argsort(-h, kind="stable")[:k]
    return float(t[top].sum() / k)


def _first_best(scores: Sequence[float]) -> int | None:
    """Index of the first maximum ignoring NaN; ``None`` when every score is NaN."""
    s = np.asarray(scores, np.float64)
    if s.size == 0 or np.isnan(s).all():
        return None
    return int(np.nanargmax(s))


def _nanmean_columns(values: np.ndarray) -> list[float]:
    """Mean of each column ignoring NaN (NaN for a column without a number), without warnings."""
    v = np.asarray(values, np.float64).reshape(len(values), -1)
    known = ~np.isnan(v)
    total = np.where(known, v, 0.0).sum(axis=0)
    count = known.sum(axis=0)
    return [float(t / c) if c else float("nan") for t, c in zip(total, count, strict=True)]


def threshold_ious(
    heatmap: np.ndarray, truth: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID
) -> np.ndarray:
    """One val item's true-positive IoU (:func:`true_positive_iou`) at each threshold of ``grid``."""
    m = normalise_map(heatmap)
    return np.array([true_positive_iou(m > np.float32(t), truth) for t in grid], np.float64)


def best_threshold(
    ious: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID
) -> tuple[float | None, list[float]]:
    """CheXlocalize's tuned threshold from the ``n x len(grid)`` rows of :func:`threshold_ious`: the
    grid value of the highest mean IoU (first on ties). ``(None, ...)`` when no IoU is defined."""
    mious = _nanmean_columns(np.asarray(ious, np.float64).reshape(-1, len(grid)))
    best = _first_best(mious)
    return (None if best is None else float(grid[best])), mious


def tune_threshold(
    heatmaps: Sequence[np.ndarray], truths: Sequence[np.ndarray], grid: Sequence[float] = THRESHOLD_GRID
) -> tuple[float | None, list[float]]:
    """CheXlocalize's per-finding map threshold: the grid value of the highest val mIoU.

    The objective is the mean true-positive IoU (:func:`true_positive_iou`: items where both the
    thresholded map and the truth have a pixel). Returns ``(best or None, mIoU per grid value)``:
    ``None`` when no threshold defines an IoU (no val positive)."""
    rows = [threshold_ious(h, g, grid) for h, g in zip(heatmaps, truths, strict=True)]
    return best_threshold(np.array(rows, np.float64).reshape(-1, len(grid)), grid)


def best_cutoff(
    otsu_ious: np.ndarray,
    positive: np.ndarray,
    probabilities: np.ndarray,
    grid: Sequence[float] = CUTOFF_GRID,
) -> tuple[float | None, list[float]]:
    """CheXlocalize's probability cutoff from each val item's Otsu IoU (:func:`mask_iou`, NaN when both
    masks are empty), whether its truth has a pixel, and its probability. At cutoff ``c`` an item
    with ``p < c`` has an empty mask: IoU 0 on a positive, undefined (left out) on a negative. The
    grid value of the highest mean IoU (first on ties); ``(None, ...)`` when none is defined."""
    p = np.asarray(probabilities, np.float64)
    kept = np.asarray(otsu_ious, np.float64)
    emptied = np.where(np.asarray(positive, bool), 0.0, np.nan)
    rows = (
        np.stack([np.where(p < c, emptied, kept) for c in grid], axis=1)
        if len(p)
        else np.zeros((0, len(grid)))
    )
    mious = _nanmean_columns(rows)
    best = _first_best(mious)
    return (None if best is None else float(grid[best])), mious


def tune_probability_cutoff(
    masks: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    probabilities: Sequence[float],
    grid: Sequence[float] = CUTOFF_GRID,
) -> tuple[float | None, list[float]]:
    """CheXlocalize's per-finding probability cutoff: the grid value of the highest val mIoU.

    ``masks`` are the val items' Otsu segmentations, ``truths`` their masks (all False for a known
    negative). At cutoff ``c`` an item's mask is emptied when ``p < c``; the objective is the mean
    :func:`mask_iou` (both empty: left out). Returns ``(best or None, mIoU per grid value)``."""
    ious = [mask_iou(m, g) for m, g in zip(masks, truths, strict=True)]
    positive = [bool(np.any(g)) for g in truths]
    return best_cutoff(np.array(ious), np.array(positive), np.asarray(probabilities, np.float64), grid)


def percentage_decrease(human: np.ndarray | float, method: np.ndarray | float) -> np.ndarray | float:
    """CheXlocalize's percentage decrease from the human benchmark: ``100 (human - method) / human``.

    Elementwise over bootstrap replicates; NaN where the human figure is 0 or NaN."""
    h, m = np.asarray(human, np.float64), np.asarray(method, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(h != 0, 100.0 * (h - m) / h, np.nan)
    return float(out) if out.ndim == 0 else out

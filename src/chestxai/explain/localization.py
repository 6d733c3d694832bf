"""Localization scores of a heatmap against ground-truth boxes and masks: pure functions.

Geometry, stated once so the numbers can be checked by hand:

* a box ``(x, y, w, h)`` is the continuous rectangle ``[x, x+w] x [y, y+h]`` in pixel units; the
  pixel at row ``r``, column ``c`` is the unit square whose centre is ``(c + 0.5, r + 0.5)``, so a
  box with integer coordinates covers exactly ``w * h`` pixels (the convention of ``boxes.csv``);
* **pointing game** (Zhang et al., 2016): a hit when the heatmap's maximum (its first pixel in
  row-major order if tied) lies inside any ground-truth box/mask of the finding, or within
  ``tolerance`` pixels of one (distance from the pixel centre to the box, or to the nearest mask
  pixel centre);
* **IoU** = area(pred ∩ GT) / area(pred ∪ GT); **IoBB** = area(pred ∩ GT) / area(pred), the
  intersection over the *predicted* box's area (ChestX-ray8, Wang et al. 2017, whose localization
  accuracy counts ``IoBB > T`` for ``T`` in :data:`IOBB_THRESHOLDS`). With several predicted and
  ground-truth boxes, an item's IoU/IoBB is the best pair (the finding is localised if any box is);
* **energy** (energy-based pointing game, Score-CAM): the share of the heatmap's mass that falls
  inside the union of the finding's boxes/masks.

Masks are boolean arrays the heatmap's size; boxes are rasterised onto the same grid when a mask
is involved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

BoxT = Sequence[float]  # x, y, w, h

#: ChestX-ray8's IoBB thresholds for localization accuracy (Table 4 of Wang et al., 2017)
IOBB_THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)


def box_area(box: BoxT) -> float:
    return max(float(box[2]), 0.0) * max(float(box[3]), 0.0)


def box_intersection(a: BoxT, b: BoxT) -> float:
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(float(ix), 0.0) * max(float(iy), 0.0)


def iou(pred: BoxT, gt: BoxT) -> float:
    inter = box_intersection(pred, gt)
    union = box_area(pred) + box_area(gt) - inter
    return inter / union if union > 0 else 0.0


def iobb(pred: BoxT, gt: BoxT) -> float:
    """Intersection over the predicted box's area (ChestX-ray8)."""
    area = box_area(pred)
    return box_intersection(pred, gt) / area if area > 0 else 0.0


def heatmap_peak(heatmap: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of the maximum (first in row-major order when tied)."""
    r, c = np.unravel_index(int(np.argmax(heatmap)), np.shape(heatmap))
    return int(r), int(c)


def point_box_distance(row: int, col: int, box: BoxT) -> float:
    """Distance from the centre of pixel ``(row, col)`` to the rectangle (0 inside or on its edge)."""
    px, py = col + 0.5, row + 0.5
    dx = max(box[0] - px, 0.0, px - (box[0] + box[2]))
    dy = max(box[1] - py, 0.0, py - (box[1] + box[3]))
    return float(np.hypot(dx, dy))


def boxes_mask(boxes: Iterable[BoxT], shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centres lie inside any box."""
    out = np.zeros(shape, bool)
    for x, y, w, h in boxes:
        c0, c1 = int(np.ceil(x - 0.5)), int(np.floor(x + w - 0.5))
        r0, r1 = int(np.ceil(y - 0.5)), int(np.floor(y + h - 0.5))
        out[max(r0, 0) : max(r1 + 1, 0), max(c0, 0) : max(c1 + 1, 0)] = True
    return out


def pointing_hit(
    heatmap: np.ndarray,
    boxes: Sequence[BoxT] = (),
    mask: np.ndarray | None = None,
    tolerance: float = 0.0,
) -> bool:
    """Pointing game for one heatmap: is its maximum inside (or within ``tolerance`` px of) the GT?"""
    r, c = heatmap_peak(heatmap)
    if any(point_box_distance(r, c, b) <= tolerance for b in boxes):
        return True
    if mask is not None and np.any(mask):
        if mask[r, c]:
            return True
        if tolerance > 0:
            dist = ndimage.distance_transform_edt(~np.asarray(mask, bool))
            return bool(dist[r, c] <= tolerance)
    return False


def energy_inside(heatmap: np.ndarray, region: np.ndarray) -> float:
    """Share of the (non-negative) heatmap mass inside the boolean ``region``."""
    h = np.clip(np.asarray(heatmap, np.float64), 0, None)
    total = h.sum()
    return float(h[np.asarray(region, bool)].sum() / total) if total > 0 else 0.0


def mask_overlap(pred: BoxT, gt_mask: np.ndarray) -> tuple[float, float]:
    """``(IoU, IoBB)`` of a predicted box against a GT mask, counted in pixels."""
    p = boxes_mask([pred], gt_mask.shape)
    g = np.asarray(gt_mask, bool)
    inter = float(np.logical_and(p, g).sum())
    union = float(np.logical_or(p, g).sum())
    area = float(p.sum())
    return (inter / union if union else 0.0, inter / area if area else 0.0)


def best_overlap(
    pred_boxes: Sequence[BoxT], gt_boxes: Sequence[BoxT] = (), gt_mask: np.ndarray | None = None
) -> tuple[float, float]:
    """Best ``(IoU, IoBB)`` over all predicted x ground-truth pairs (each maximised separately)."""
    best_iou = best_iobb = 0.0
    for p in pred_boxes:
        for g in gt_boxes:
            best_iou, best_iobb = max(best_iou, iou(p, g)), max(best_iobb, iobb(p, g))
        if gt_mask is not None and np.any(gt_mask):
            i, b = mask_overlap(p, gt_mask)
            best_iou, best_iobb = max(best_iou, i), max(best_iobb, b)
    return best_iou, best_iobb


def score_item(
    heatmap: np.ndarray,
    pred_boxes: Sequence[BoxT],
    gt_boxes: Sequence[BoxT] = (),
    gt_mask: np.ndarray | None = None,
    tolerance: float = 0.0,
) -> dict[str, float]:
    """All localization scores of one (image, finding): ``hit, iou, iobb, energy``."""
    region = boxes_mask(gt_boxes, np.shape(heatmap))
    if gt_mask is not None:
        region |= np.asarray(gt_mask, bool)
    best_iou, best_iobb = best_overlap(pred_boxes, gt_boxes, gt_mask)
    return {
        "hit": float(pointing_hit(heatmap, gt_boxes, gt_mask, tolerance)),
        "iou": best_iou,
        "iobb": best_iobb,
        "energy": energy_inside(heatmap, region),
    }


def _summary(frame: pd.DataFrame, thresholds: Sequence[float]) -> dict[str, float]:
    out = {
        "n": int(len(frame)),
        "pointing_game": float(frame["hit"].mean()),
        "iou": float(frame["iou"].mean()),
        "iobb": float(frame["iobb"].mean()),
        "energy": float(frame["energy"].mean()),
    }
    for t in thresholds:
        out[f"acc_iobb_{t:g}"] = float((frame["iobb"] > t).mean())
    return out


def summarize(items: pd.DataFrame, thresholds: Sequence[float] = IOBB_THRESHOLDS) -> dict:
    """Per-finding and overall means of :func:`score_item` rows (``finding`` column + scores).

    ``overall`` pools every item (micro average); ``mean_over_findings`` averages the per-finding
    figures (macro), which ChestX-ray8-style tables compare.
    """
    if items.empty:
        return {"overall": None, "per_finding": {}, "mean_over_findings": None}
    per = {str(f): _summary(g, thresholds) for f, g in items.groupby("finding", sort=True)}
    keys = [k for k in next(iter(per.values())) if k != "n"]
    macro = {k: float(np.mean([v[k] for v in per.values()])) for k in keys}
    macro["n"] = len(per)
    return {"overall": _summary(items, thresholds), "per_finding": per, "mean_over_findings": macro}

"""Boxes from heatmaps: threshold, connected components, one box per component.

Conventions (shared with the prepared cache's ``boxes.csv``): a box is ``x, y, w, h`` in pixels
of the image the heatmap lies on, top-left origin, covering pixel columns ``x .. x+w-1`` and rows
``y .. y+h-1`` (so a single pixel is ``w = h = 1``).

Thresholds: a fraction of the heatmap's maximum (0.5 keeps what is at least half as hot as the
peak), or ``"otsu"``: the level that best splits the heatmap's histogram into two classes (Otsu,
1979), written here in NumPy because scikit-image is not a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0  # share of the heatmap's mass inside the component

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's level for ``values``: maximises the between-class variance of the histogram.

    Returns a value between bin centres; a constant input returns that constant.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)  # pixels at or below each bin
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    k = int(np.argmax(between[:-1]))  # a split after the last bin leaves one class empty
    return float(edges[k + 1])


def threshold_heatmap(heatmap: np.ndarray, threshold: float | str = 0.5) -> np.ndarray:
    """Boolean mask of the heatmap's hot region: ``>= threshold * max``, or at or above Otsu's level."""
    h = np.asarray(heatmap, dtype=np.float32)
    if isinstance(threshold, str):
        if threshold.lower() != "otsu":
            raise ValueError(
                f"threshold must be a fraction of the maximum (0-1) or 'otsu', got {threshold!r}"
            )
        return h >= otsu_threshold(h)
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be a fraction of the heatmap maximum in [0, 1], got {threshold}")
    peak = float(h.max()) if h.size else 0.0
    if peak <= 0:
        return np.zeros(h.shape, bool)
    return h >= float(threshold) * peak


def boxes_from_heatmap(
    heatmap: np.ndarray,
    threshold: float | str = 0.5,
    max_boxes: int = 3,
    min_area_fraction: float = 0.0,
) -> list[Box]:
    """Bounding boxes of the 8-connected hot regions, hottest (largest heatmap mass) first.

    ``max_boxes`` keeps the strongest components; ``min_area_fraction`` drops components smaller
    than that share of the image (specks of a noisy map).
    """
    h = np.asarray(heatmap, dtype=np.float32)
    mask = threshold_heatmap(h, threshold)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    total = float(np.clip(h, 0, None).sum()) or 1.0
    ids = np.arange(1, n + 1)
    mass = ndimage.sum_labels(np.clip(h, 0, None), labels, ids)
    area = ndimage.sum_labels(np.ones_like(h), labels, ids)
    slices = ndimage.find_objects(labels)
    order = np.argsort(-mass, kind="stable")
    out: list[Box] = []
    for k in order:
        if area[k] < min_area_fraction * h.size:
            continue
        sy, sx = slices[k]
        out.append(
            Box(
                int(sx.start),
                int(sy.start),
                int(sx.stop - sx.start),
                int(sy.stop - sy.start),
                float(mass[k] / total),
            )
        )
        if len(out) >= max_boxes:
            break
    return out

"""Which pixels a box or a heatmap is in: the original image's (default) or the model's grid.

A network sees the image stretched to a square (``prepare`` resizes to the cache size, the model
to its input size ``s``), and the explainer returns its heatmap on that ``s x s`` grid. A box
read off that grid is not a box on the X-ray a reader holds (1024 x 1024 NIH, 2500 x 2048 DICOM),
nor on the ground truth, which is in the original's pixels. So every output names its space:

* ``original`` (default): ``x, y, w, h`` in pixels of the decoded original image, top-left origin,
  the convention of :mod:`chestxai.explain.boxes` and of the ground-truth ``boxes.csv``. The
  heatmap is stretched back (bilinear) to the original's shape and boxed there; an original
  longer than :data:`BOX_GRID_MAX_SIDE` is boxed on a copy shrunk to that side and the boxes
  scaled back outwards (floor of the start, ceiling of the end), so memory stays bounded.
* ``model``: the same on the network's ``s x s`` input grid (the image stretched to a square).

Raw heatmap arrays are always on the model grid (that is what the explainer computed); stretch
them to the original's ``rows x cols`` to lay them on the image.
"""

from __future__ import annotations

import math

import numpy as np

from chestxai.explain.boxes import Box, boxes_from_heatmap
from chestxai.explain.overlay import resize_heatmap

ORIGINAL = "original"
MODEL = "model"
SPACES = (ORIGINAL, MODEL)
#: longest side the heatmap is stretched to for boxing; larger originals are boxed shrunk, scaled back
BOX_GRID_MAX_SIDE = 2048
#: longest side of a written overlay PNG; larger originals are shrunk for the picture only
OVERLAY_MAX_SIDE = 2048


def check_space(space: str, flag: str = "--box-space") -> str:
    if space not in SPACES:
        raise ValueError(f"{flag} {space!r}: choose one of {', '.join(SPACES)}")
    return space


def bounded_shape(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(rows, cols)`` shrunk (aspect kept) so that the longer side is at most ``max_side``."""
    rows, cols = int(shape[0]), int(shape[1])
    scale = min(1.0, max_side / max(rows, cols))
    return (max(1, round(rows * scale)), max(1, round(cols * scale)))


def _scale_box(b: Box, grid: tuple[int, int], shape: tuple[int, int]) -> Box:
    fy, fx = shape[0] / grid[0], shape[1] / grid[1]
    x0, y0 = math.floor(b.x * fx), math.floor(b.y * fy)
    x1 = min(shape[1], math.ceil((b.x + b.w) * fx))
    y1 = min(shape[0], math.ceil((b.y + b.h) * fy))
    return Box(x0, y0, x1 - x0, y1 - y0, b.score)


def boxes_in_space(
    heatmap: np.ndarray,
    original_shape: tuple[int, int],
    space: str = ORIGINAL,
    threshold: float | str = 0.5,
    max_boxes: int = 3,
    min_area_fraction: float = 0.0,
) -> tuple[list[Box], tuple[int, int]]:
    """Boxes of a model-grid ``heatmap`` in ``space`` -> (boxes, ``(rows, cols)`` of that space)."""
    check_space(space, "space")
    heat = np.asarray(heatmap, np.float32)
    if space == MODEL:
        return boxes_from_heatmap(heat, threshold, max_boxes, min_area_fraction), tuple(heat.shape[:2])
    shape = (int(original_shape[0]), int(original_shape[1]))
    grid = bounded_shape(shape, BOX_GRID_MAX_SIDE)
    boxes = boxes_from_heatmap(resize_heatmap(heat, grid), threshold, max_boxes, min_area_fraction)
    if grid != shape:
        boxes = [_scale_box(b, grid, shape) for b in boxes]
    return boxes, shape

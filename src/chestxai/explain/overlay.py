"""Figures: a heatmap over the original image, with predicted and ground-truth boxes.

The blend is pytorch-grad-cam's ``show_cam_on_image`` (OpenCV colormap, ``image_weight``);
``opacity`` is the heatmap's share (``1 - image_weight``). Predicted boxes are drawn in
``PRED_COLOR``, ground truth in ``GT_COLOR`` (RGB), so a figure reads without a legend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PRED_COLOR = (0, 255, 0)  # green
GT_COLOR = (255, 255, 255)  # white


def colormap_code(name: str) -> int:
    """OpenCV colormap constant for ``name`` (``jet``, ``turbo``, ``inferno``, ``viridis``, ...)."""
    import cv2

    code = getattr(cv2, f"COLORMAP_{name.upper()}", None)
    if code is None:
        names = sorted(k.removeprefix("COLORMAP_").lower() for k in dir(cv2) if k.startswith("COLORMAP_"))
        raise ValueError(f"unknown colormap {name!r}; choose one of: {', '.join(names)}")
    return int(code)


def resize_heatmap(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a ``h x w`` heatmap to ``shape = (rows, cols)``."""
    import cv2

    h = np.asarray(heatmap, np.float32)
    if h.shape == tuple(shape):
        return h
    return cv2.resize(h, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def overlay_heatmap(
    image: np.ndarray, heatmap: np.ndarray, colormap: str = "jet", opacity: float = 0.5
) -> np.ndarray:
    """uint8 grayscale ``H x W`` image + ``[0, 1]`` heatmap (any size) -> uint8 RGB ``H x W x 3``."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    img = np.asarray(image)
    gray = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    rgb = np.repeat(gray[..., None], 3, axis=2) if gray.ndim == 2 else gray
    hm = np.clip(resize_heatmap(heatmap, rgb.shape[:2]), 0.0, 1.0)
    return show_cam_on_image(
        rgb, hm, use_rgb=True, colormap=colormap_code(colormap), image_weight=1.0 - opacity
    )


def draw_boxes(
    rgb: np.ndarray, boxes: Iterable[Sequence[float]], color=PRED_COLOR, thickness: int | None = None
) -> np.ndarray:
    """Copy of ``rgb`` with ``(x, y, w, h)`` rectangles drawn (edges on the boxes' outer pixels)."""
    import cv2

    out = np.ascontiguousarray(rgb).copy()
    t = thickness or max(1, round(max(out.shape[:2]) / 256))
    for x, y, w, h in boxes:
        p0 = (int(round(x)), int(round(y)))
        p1 = (int(round(x + w)) - 1, int(round(y + h)) - 1)
        cv2.rectangle(out, p0, p1, tuple(int(c) for c in color), t)
    return out


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB (or grayscale) uint8 array as PNG, creating the folder."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(rgb)
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}; is the folder writable?")
    return path

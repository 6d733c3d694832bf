"""Pictures for the viewer: the decoded image and the heatmap in colour at display size, and boxes.

The model sees the image stretched to a square (as ``prepare`` caches it), so its heatmap is
stretched back to the image's own aspect ratio for the picture. Boxes are drawn with the explain
stage's default box settings in the space asked for (:mod:`chestxai.explain.spaces`: the original
image's pixels by default, or the model grid), as pixels and as fractions of that space. The
heatmap is sent apart from the image so that the browser can blend them with any opacity.
"""

from __future__ import annotations

import base64

import numpy as np

from chestxai.explain.overlay import colormap_code, resize_heatmap
from chestxai.explain.settings import ExplainSettings
from chestxai.explain.spaces import ORIGINAL, boxes_in_space

DISPLAY_MAX_SIDE = 512


def png_data_url(image: np.ndarray) -> str:
    """uint8 grayscale or RGB array -> ``data:image/png;base64,...``."""
    import cv2

    arr = np.ascontiguousarray(image)
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def display_image(unit: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """float [0, 1] image -> uint8, shrunk (aspect kept, Lanczos) so its longer side is <= max_side."""
    from PIL import Image

    h, w = unit.shape
    scale = min(1.0, max_side / max(h, w))
    img = np.ascontiguousarray(unit, dtype=np.float32)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def heatmap_picture(
    heatmap: np.ndarray,
    display_shape: tuple[int, int],
    original_shape: tuple[int, int],
    space: str = ORIGINAL,
    values: bool = False,
    colormap: str = "jet",
) -> dict:
    """A model-grid heatmap -> the colour PNG at ``display_shape`` (the image's aspect, for the
    viewer), the boxes in ``space`` (pixels and fractions of that space), the heatmap's value range
    for a colour bar and, with ``values``, the raw model-grid array."""
    import cv2

    settings = ExplainSettings()
    raw = np.asarray(heatmap, np.float32)
    heat = np.clip(resize_heatmap(raw, display_shape), 0.0, 1.0)
    coloured = cv2.applyColorMap(np.uint8(np.rint(255 * heat)), colormap_code(colormap))
    rgb = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)
    boxes, (rows, cols) = boxes_in_space(
        raw, original_shape, space, settings.threshold, settings.max_boxes, settings.min_area_fraction
    )
    return {
        "heatmap": png_data_url(rgb),
        "colormap": colormap,
        "value_range": [round(float(raw.min()), 6), round(float(raw.max()), 6)],
        "space": space,
        "space_size": [cols, rows],
        "boxes": [
            {
                "x": b.x,
                "y": b.y,
                "w": b.w,
                "h": b.h,
                "score": round(b.score, 4),
                "fraction": [b.x / cols, b.y / rows, b.w / cols, b.h / rows],
            }
            for b in boxes
        ],
        "box_threshold": settings.threshold,
        "values": np.round(raw, 5).tolist() if values else None,
        "values_size": [int(raw.shape[1]), int(raw.shape[0])],
    }

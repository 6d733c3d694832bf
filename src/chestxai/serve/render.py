"""Pictures for the viewer: the decoded image, the heatmap in colour, and boxes, at display size.

The model sees the image stretched to a square (as ``prepare`` caches it), so its heatmap is
stretched back to the image's own aspect ratio here; boxes are drawn from that resized heatmap
with the explain stage's default box settings, in display pixels and as fractions of the image.
The heatmap is sent apart from the image so that the browser can blend them with any opacity.
"""

from __future__ import annotations

import base64

import numpy as np

from chestxai.explain.boxes import boxes_from_heatmap
from chestxai.explain.overlay import colormap_code, resize_heatmap
from chestxai.explain.settings import ExplainSettings

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


def heatmap_picture(heatmap: np.ndarray, shape: tuple[int, int], colormap: str = "jet") -> dict:
    """Colour heatmap PNG at ``shape`` plus the boxes drawn from it (pixels and fractions)."""
    import cv2

    settings = ExplainSettings()
    heat = np.clip(resize_heatmap(heatmap, shape), 0.0, 1.0)
    coloured = cv2.applyColorMap(np.uint8(np.rint(255 * heat)), colormap_code(colormap))
    rgb = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)
    boxes = boxes_from_heatmap(heat, settings.threshold, settings.max_boxes, settings.min_area_fraction)
    rows, cols = shape
    return {
        "heatmap": png_data_url(rgb),
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
    }

"""Resizing to the square cache size: images with Lanczos on float32, masks by area + threshold.

Why float: 16-bit and windowed DICOM data keep their precision through the filter and are rounded
to uint8 once, at the end. Why stretch (not crop or pad): boxes are fractions of width/height, so
a stretched image keeps every box at ``fraction * size`` exactly. Why area + threshold for masks:
nearest-neighbour downsampling aliases thin structures; averaging then keeping pixels at least
half covered preserves area and stays binary.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_unit(arr: np.ndarray) -> np.ndarray:
    """An in-memory image (uint8, uint16, float, or H x W x 3) -> float32 [0, 1] grayscale."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return (
            np.clip(a / 255.0, 0, 1).astype(np.float32) if np.asarray(arr).dtype == np.uint8 else _minmax(a)
        )
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(a, 0, 1).astype(np.float32)
    return _minmax(a.astype(np.float64))


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.float32) if hi <= lo else ((a - lo) / (hi - lo)).astype(np.float32)


def resize_unit(img: np.ndarray, size: int) -> np.ndarray:
    """float32 [0, 1] image -> uint8 ``size x size`` (Lanczos, antialiased when shrinking)."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    if img.shape != (size, size):
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS))
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """0/1 mask -> uint8 0/1 ``size x size``: area average, then keep pixels at least half inside."""
    m = np.ascontiguousarray(mask, dtype=np.float32)
    if m.shape != (size, size):
        m = np.asarray(Image.fromarray(m).resize((size, size), Image.Resampling.BOX))
    return (m >= 0.5).astype(np.uint8)

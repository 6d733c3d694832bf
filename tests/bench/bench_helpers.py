"""Helpers for the benchmark tests (imported by name, like tests/explain/explain_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage


def write_background_folder(root: Path, n: int, size: int = 64, seed: int = 0) -> Path:
    """``n`` smooth grayscale PNGs (a bright mediastinum band, darker lungs, soft texture) in a
    class-per-folder tree (``NORMAL``/``PNEUMONIA``), the layout ``--source folder`` reads."""
    rng = np.random.default_rng(seed)
    cols = np.linspace(-1, 1, size)[None, :]
    for i in range(n):
        base = 0.25 + 0.45 * np.exp(-((cols / 0.25) ** 2)) + 0.1 * np.linspace(0, 1, size)[:, None]
        tex = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.0) * 0.08
        img = np.clip(base + tex, 0, 1)
        folder = root / ("NORMAL" if i % 2 else "PNEUMONIA")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"img{i:03d}.png")
    return root

"""Synthetic data for tests and sanity checks (like ``numpy.testing``): tiny caches, blob tasks.

Kept in the package rather than in ``tests/`` so every test module (and users checking an
installation) can import them by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def write_tiny_cache(
    path: Path,
    images: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    task: str,
    split: list[str] | None = None,
    patient_id: list[str] | None = None,
    source: str = "synthetic",
) -> Path:
    """Write a finished cache directory in the layout of ``chestxai.data.cache`` (for unit tests).

    Tests of later stages use this instead of running ``prepare`` so they stay fast and independent.
    """
    path.mkdir(parents=True, exist_ok=True)
    n, size = len(images), images.shape[-1]
    ids = [f"img{i:05d}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "path": [""] * n,
            "patient_id": patient_id if patient_id is not None else ids,
            "view": ["PA"] * n,
            "split": split if split is not None else [""] * n,
        }
    )
    frame.to_csv(path / "index.csv", index=False)
    np.asarray(images, np.uint8).tofile(path / "images.u8")
    np.save(path / "labels.npy", np.asarray(labels, np.float32))
    meta = {
        "source": source,
        "size": int(size),
        "label_names": list(label_names),
        "task": task,
        "n": n,
        "key": "test",
        "complete": True,
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def blob_dataset(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images whose label is decided by a bright blob at a known place.

    Returns (uint8 images N x size x size, labels N x 1, blob boxes N x 4 as x, y, w, h in pixels;
    NaN for negatives). Positive images carry a bright square at a random position; negatives only
    noise. A model that learns the task must look at the blob - the basis of explanation tests.
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(80, 20, size=(n, size, size)).clip(0, 255)
    labels = (rng.random(n) < 0.5).astype(np.float32)
    boxes = np.full((n, 4), np.nan, np.float32)
    side = max(size // 5, 3)
    for i in np.flatnonzero(labels):
        x, y = rng.integers(1, size - side - 1, size=2)
        images[i, y : y + side, x : x + side] = 230
        boxes[i] = (x, y, side, side)
    return images.astype(np.uint8), labels[:, None], boxes

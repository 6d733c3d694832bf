"""Synthetic data for tests and sanity checks (like ``numpy.testing``): tiny caches, blob tasks.

Kept in the package rather than in ``tests/`` so every test module (and users checking an
installation) can import them by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.labels import NIH14  # noqa: F401  (re-exported for tests)
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, save_atomic


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


# --- tiny run directories (cache + untrained checkpoint + splits + history) ---------------------
SPLIT_CYCLE = ("train", "val", "test", "test")


def tiny_labels(task: str, n: int, n_labels: int, rng: np.random.Generator) -> np.ndarray:
    if task == "binary":
        return (rng.random((n, 1)) < 0.4).astype(np.float32)
    if task == "multiclass":
        return np.eye(n_labels, dtype=np.float32)[
            (np.arange(n) // len(SPLIT_CYCLE)) % n_labels
        ]  # every class in every split
    y = (rng.random((n, n_labels)) < 0.3).astype(np.float32)
    y[rng.random((n, n_labels)) < 0.1] = np.nan  # unknown findings are masked per finding
    return y


def label_names_for(task: str, n_labels: int) -> list[str]:
    if task == "binary":
        return ["Pneumonia"]
    if task == "multilabel" and n_labels == len(NIH14):
        return list(NIH14)
    return [f"class{i}" for i in range(n_labels)]


def write_tiny_run(
    root: Path,
    task: str = "binary",
    n_labels: int = 1,
    n: int = 48,
    size: int = 32,
    seed: int = 0,
    patient_id: list[str] | None = None,
    label_names: list[str] | None = None,
    labels: np.ndarray | None = None,
    splits_csv: bool = True,
    history: bool = True,
) -> tuple[Path, Path]:
    """Returns ``(run_dir, cache_dir)`` under ``root``: a cache split train/val/test/test by row,
    an untrained resnet18 checkpoint pointing at it, ``splits.csv`` and ``history.csv``."""
    rng = np.random.default_rng(seed)
    names = label_names or label_names_for(task, n_labels)
    y = tiny_labels(task, n, len(names), rng) if labels is None else labels
    images = rng.integers(0, 255, size=(n, size, size), dtype=np.uint8)
    # brighten positives of the first label so that even an untrained net scores a little signal
    images[np.nan_to_num(y[:, 0]) == 1] //= 2
    split = [SPLIT_CYCLE[i % len(SPLIT_CYCLE)] for i in range(n)]
    cache = write_tiny_cache(root / "cache", images, y, names, task, split=split, patient_id=patient_id)
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    model = create_model("resnet18", num_labels=len(names), task=task, input_size=size)
    preprocess = {"size": size, "mean": 0.5, "std": 0.25}
    ckpt = make_checkpoint(model, names, preprocess, config={"data": {"cache_dir": str(cache)}})
    save_atomic(ckpt, run / "checkpoint.pt")
    if splits_csv:
        ids = [f"img{i:05d}" for i in range(n)]
        pd.DataFrame({"image_id": ids, "row": range(n), "split": split}).to_csv(
            run / "splits.csv", index=False
        )
    if history:
        pd.DataFrame(
            {
                "epoch": [1, 2, 3],
                "train_loss": [0.7, 0.6, 0.5],
                "val_loss": [0.72, 0.65, 0.6],
                "val_auc": [0.6, 0.7, 0.75],
                "epoch_time_s": [1.5, 1.4, 1.6],
                "train_images_per_s": [100.0, 110.0, 105.0],
            }
        ).to_csv(run / "history.csv", index=False)
    return run, cache

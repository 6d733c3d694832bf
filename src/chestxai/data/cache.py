"""The prepared cache: what ``chestxai prepare`` writes and every training/eval epoch reads.

Images are decoded and resized once into a uint8 memory map, so an epoch is a memcpy away
(nanoGPT ``prepare.py`` / MONAI ``PersistentDataset`` idea). Layout of one cache directory
(``<out>/<source>-<size>px-<hash>/``)::

    meta.json            source, root, options, size, label_names, task, n, key (hash), complete
    images.u8            raw uint8, shape (n, size, size), row i = index.csv row i
    index.csv            image_id, path, patient_id, view, split (+ reader metadata columns)
    labels.npy           float32 (n, L): 1 / 0 / NaN (unknown)
    boxes.csv            image_id, row, label, x, y, w, h   in cache pixels (top-left origin)
    masks.u8 + masks.csv optional: (m, size, size) uint8 {0,1}; csv: image_id, row, label
    prepare_report.json  skipped items with reasons, timings

Only images that decoded are in the cache; the skipped ones are listed in the report.
"""

from __future__ import annotations

import copy
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

META = "meta.json"
IMAGES = "images.u8"
INDEX = "index.csv"
LABELS = "labels.npy"
BOXES = "boxes.csv"
MASKS = "masks.u8"
MASK_INDEX = "masks.csv"
REPORT = "prepare_report.json"


class PreparedCache:
    """Read-only view of a finished cache directory (cheap to open; images are memory-mapped)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.exists():
            raise FileNotFoundError(
                f"{self.path} is not a prepared cache (no {META}); create one with "
                f"`chestxai prepare --source S --root PATH --size N --out CACHE`"
            )
        self.meta = json.loads(meta_path.read_text())
        if not self.meta.get("complete"):
            raise ValueError(
                f"{self.path} is an unfinished cache; re-run the same `chestxai prepare` to resume it"
            )

    # --- metadata ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def label_names(self) -> list[str]:
        return list(self.meta["label_names"])

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def source(self) -> str:
        return str(self.meta["source"])

    def __len__(self) -> int:
        return int(self.meta["n"])

    # --- arrays and tables --------------------------------------------------------------------
    @cached_property
    def images(self) -> np.ndarray:
        n, s = len(self), self.size
        if n == 0:
            return np.zeros((0, s, s), np.uint8)
        return np.memmap(self.path / IMAGES, dtype=np.uint8, mode="r", shape=(n, s, s))

    @cached_property
    def frame(self) -> pd.DataFrame:
        return pd.read_csv(
            self.path / INDEX, dtype={"image_id": str, "patient_id": str}, keep_default_na=False
        )

    @cached_property
    def labels(self) -> np.ndarray:
        return np.load(self.path / LABELS).astype(np.float32)

    @cached_property
    def boxes(self) -> pd.DataFrame:
        p = self.path / BOXES
        if not p.exists():
            return pd.DataFrame(columns=["image_id", "row", "label", "x", "y", "w", "h"])
        return pd.read_csv(p, dtype={"image_id": str})

    @cached_property
    def mask_index(self) -> pd.DataFrame:
        p = self.path / MASK_INDEX
        if not p.exists():
            return pd.DataFrame(columns=["image_id", "row", "label"])
        return pd.read_csv(p, dtype={"image_id": str})

    @cached_property
    def masks(self) -> np.ndarray:
        m, s = len(self.mask_index), self.size
        if m == 0:
            return np.zeros((0, s, s), np.uint8)
        return np.memmap(self.path / MASKS, dtype=np.uint8, mode="r", shape=(m, s, s))

    @cached_property
    def report(self) -> dict:
        p = self.path / REPORT
        return json.loads(p.read_text()) if p.exists() else {}

    # --- helpers ----------------------------------------------------------------------------
    def with_labels(self, names: list[str]) -> PreparedCache:
        """The same cache seen through some of its label columns, in the order given: what a run
        trained with ``data.labels`` (e.g. NIH's 8 boxed findings of 14) is evaluated and explained
        on. Images, index and boxes are shared; ``names`` must be labels of this cache."""
        unknown = [n for n in names if n not in self.label_names]
        if unknown:
            raise ValueError(
                f"labels {unknown} are not in the cache {self.path}; its labels are {self.label_names}"
            )
        cols = [self.label_names.index(n) for n in names]
        view = copy.copy(self)
        view.meta = {**self.meta, "label_names": list(names)}
        view.__dict__["labels"] = self.labels[:, cols]
        return view

    def split_rows(self, split: str) -> np.ndarray:
        """Row positions whose ``split`` column equals ``split``."""
        rows = np.flatnonzero(self.frame["split"].astype(str).to_numpy() == split)
        return rows

    def has_splits(self) -> bool:
        return bool((self.frame["split"].astype(str) != "").any())

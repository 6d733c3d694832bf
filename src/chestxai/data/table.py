"""The data contract every reader returns: :class:`ImageTable`.

One row per image. Labels are float32 ``N x L`` with 1, 0 or NaN (= unknown/uncertain after the
reader's stated policy). Side tables hold boxes and masks keyed by ``image_id``.

Conventions (stated once, used everywhere):

* ``boxes``: columns ``image_id, label, x, y, w, h`` as **fractions of the image width/height**
  (top-left origin). Fractions survive any resize, so a reader never has to open an image to
  map its boxes; ``prepare`` multiplies by the cache size to get cache pixels.
* ``masks``: columns ``image_id, label, kind, ref, height, width`` where ``kind`` is ``"rle"``
  (SIIM run-length string, ``ref`` = the string, ``height``/``width`` = its native size) or
  ``"png"`` (``ref`` = path to a binary mask image). :func:`chestxai.data.masks.load_mask`
  decodes either.
* ``task``: ``"binary"`` (L == 1), ``"multiclass"`` (one-hot rows), ``"multilabel"``.
* Demographics: optional frame columns ``sex`` (``"F"``/``"M"``/None), ``age`` (float years or
  NaN), ``view`` (``"PA"``/``"AP"``/``"LATERAL"``/... or ``""``) and ``site`` (always present: the
  recorded hospital/source, else the reader's name), normalised on construction by
  :func:`chestxai.data.demographics.normalise_frame` (the rules live there).
* In-memory sources (MedMNIST) set ``arrays`` (uint8 ``N x H x W``) and leave ``path`` empty;
  row ``i`` of the frame is ``arrays[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.demographics import normalise_frame
from chestxai.tasks import TASKS

FRAME_COLUMNS = ("image_id", "path", "patient_id", "view", "split")
BOX_COLUMNS = ("image_id", "label", "x", "y", "w", "h")
MASK_COLUMNS = ("image_id", "label", "kind", "ref", "height", "width")


def empty_boxes() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in "xywh" else "object") for c in BOX_COLUMNS})


def empty_masks() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in MASK_COLUMNS})


@dataclass
class ImageTable:
    """Images, labels and side tables of one dataset, in the one shape every stage expects.

    ``frame`` has at least :data:`FRAME_COLUMNS` (``path`` may be empty for in-memory sources,
    ``split`` is ``train``/``val``/``test`` or empty when the source defines none) plus any
    source-specific metadata, aligned row for row with ``labels``.
    """

    source: str
    frame: pd.DataFrame
    label_names: list[str]
    labels: np.ndarray
    task: str
    boxes: pd.DataFrame = field(default_factory=empty_boxes)
    masks: pd.DataFrame = field(default_factory=empty_masks)
    arrays: np.ndarray | None = None
    root: Path | None = None
    notes: list[str] = field(default_factory=list)  # policies applied, rows dropped, ... (shown by summary)
    # inputs the reader could not use, each {"path", "reason"} (unreadable folders, links not
    # followed, ...): kept apart from ``notes`` so that prepare can list them beside skipped images
    skipped: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = [c for c in FRAME_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"{self.source}: table frame lacks columns {missing}")
        self.frame = normalise_frame(self.frame.reset_index(drop=True), self.source)
        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.labels.ndim != 2 or self.labels.shape != (len(self.frame), len(self.label_names)):
            raise ValueError(
                f"{self.source}: labels shape {self.labels.shape} does not match "
                f"{len(self.frame)} rows x {len(self.label_names)} label names"
            )
        if self.task not in TASKS:
            raise ValueError(f"{self.source}: task {self.task!r} is not one of {TASKS}")
        if self.task == "binary" and len(self.label_names) != 1:
            raise ValueError(f"{self.source}: a binary task has exactly one label, got {self.label_names}")
        if self.arrays is not None and len(self.arrays) != len(self.frame):
            raise ValueError(f"{self.source}: {len(self.arrays)} arrays for {len(self.frame)} rows")
        for name, cols in (("boxes", BOX_COLUMNS), ("masks", MASK_COLUMNS)):
            df = getattr(self, name)
            lacking = [c for c in cols if c not in df.columns]
            if lacking:
                raise ValueError(f"{self.source}: {name} table lacks columns {lacking}")

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, rows: np.ndarray | list[int]) -> ImageTable:
        """Rows ``rows`` (positions) with side tables restricted to the kept images."""
        rows = np.asarray(rows, dtype=np.int64)
        frame = self.frame.iloc[rows].reset_index(drop=True)
        keep = set(frame["image_id"])
        return ImageTable(
            source=self.source,
            frame=frame,
            label_names=list(self.label_names),
            labels=self.labels[rows],
            task=self.task,
            boxes=self.boxes[self.boxes["image_id"].isin(keep)].reset_index(drop=True),
            masks=self.masks[self.masks["image_id"].isin(keep)].reset_index(drop=True),
            arrays=None if self.arrays is None else self.arrays[rows],
            root=self.root,
            notes=list(self.notes),
            skipped=list(self.skipped),
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Per label: positives, negatives, unknown (NaN)."""
        out = {}
        for j, name in enumerate(self.label_names):
            col = self.labels[:, j]
            out[name] = {
                "positive": int(np.sum(col == 1)),
                "negative": int(np.sum(col == 0)),
                "unknown": int(np.sum(np.isnan(col))),
            }
        return out

    def class_index(self) -> np.ndarray:
        """Integer class per row for binary/multiclass tasks (used for stratification)."""
        if self.task == "binary":
            return np.nan_to_num(self.labels[:, 0], nan=0).astype(np.int64)
        if self.task == "multiclass":
            return np.argmax(np.nan_to_num(self.labels, nan=0), axis=1).astype(np.int64)
        raise ValueError("class_index() is defined for binary and multiclass tasks only")

"""Ground-truth box files for ``explain --boxes``, accepted as their sources distribute them.

Three layouts, told apart by their header:

* NIH ``BBox_List_2017.csv`` (``Image Index, Finding Label, Bbox [x, y, w, h`` + three unnamed
  columns, or ``x, y, w, h``): pixels of the 1024 px release;
* RSNA ``stage_2_train_labels.csv`` (``patientId, x, y, width, height, Target``): pixels of the
  1024 px DICOMs, label ``Pneumonia``;
* the project's own ``image_id, label, x, y, w, h``: fractions of the image width/height (the
  data contract, what every reader writes) when every coordinate lies in [0, 1], else pixels of
  the explained image.

The official files are parsed by the dataset readers' own functions (one parser per format, the
same scaling as ``prepare``), so their boxes become fractions and fit any resized copy of the
images (the shared NIH box images are 512 px while the file is in 1024 px space). Each item's
boxes are then scaled to its own image size (:func:`boxes_in_pixels`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import nih, rsna

log = logging.getLogger(__name__)

BOX_COLUMNS = ("image_id", "label", "x", "y", "w", "h")
#: marks a boxes frame whose coordinates are fractions of each image's width/height
FRACTION = "fraction"


def _header(path: Path) -> list[str]:
    try:
        return [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"boxes file {path} is not a readable CSV ({exc})") from exc


def read_box_file(path: str | Path) -> pd.DataFrame:
    """``image_id, label, x, y, w, h`` plus a bool ``fraction`` column (True: fractions of the
    image, False: pixels of the explained image), from any of the layouts in the module doc."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"boxes file {path} does not exist")
    header = _header(path)
    if header[:2] == ["Image Index", "Finding Label"]:
        boxes, kind = nih.read_boxes(path), "NIH box list (1024 px -> fractions)"
    elif {"patientId", "Target"} <= set(header):
        boxes, kind = rsna.read_boxes(path), "RSNA label table (1024 px -> fractions)"
    else:
        return _read_own(path, header)
    log.info(
        "%s: %d boxes on %d images, read as an %s", path.name, len(boxes), boxes["image_id"].nunique(), kind
    )
    return boxes.assign(**{FRACTION: True})


def _read_own(path: Path, header: list[str]) -> pd.DataFrame:
    missing = [c for c in BOX_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{path} lacks columns {missing}; a boxes CSV is the official NIH BBox_List_2017.csv, the "
            f"RSNA stage_2_train_labels.csv, or {', '.join(BOX_COLUMNS)} (fractions of the image, or "
            f"pixels of the explained image; top-left origin)"
        )
    frame = pd.read_csv(path, dtype={"image_id": str, "label": str})
    frame.columns = [str(c).strip() for c in frame.columns]
    coords = frame[["x", "y", "w", "h"]].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1) | (coords[["w", "h"]] <= 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise ValueError(f"{path}: row {row} has a missing, non-numeric or non-positive box coordinate")
    values = coords.to_numpy()
    fraction = bool(len(values)) and bool(((values >= 0) & (values <= 1)).all())
    log.info(
        "%s: %d boxes, coordinates read as %s",
        path.name,
        len(frame),
        "fractions of the image" if fraction else "pixels of the explained image",
    )
    out = frame[["image_id", "label"]].assign(**coords)
    out["image_id"] = out["image_id"].str.strip()
    return out.assign(**{FRACTION: fraction})


def boxes_in_pixels(rows: pd.DataFrame, shape: tuple[int, ...]) -> list[tuple[float, float, float, float]]:
    """``(x, y, w, h)`` in pixels of an image of ``shape`` (rows marked as fractions are scaled)."""
    xywh = rows[["x", "y", "w", "h"]].to_numpy(dtype=np.float64)
    if FRACTION in rows:
        h, w = shape[:2]
        scale = np.where(rows[FRACTION].to_numpy(dtype=bool)[:, None], [[w, h, w, h]], 1.0)
        xywh = xywh * scale
    return [tuple(map(float, r)) for r in xywh]

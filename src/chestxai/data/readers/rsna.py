"""RSNA Pneumonia Detection Challenge (Kaggle 2018): binary label + opacity boxes on DICOMs.

Layout as distributed::

    stage_2_train_labels.csv        patientId, x, y, width, height, Target   (also .zip / .gz)
    stage_2_detailed_class_info.csv patientId, class   (optional: Lung Opacity / No Lung Opacity / Not Normal / Normal)
    stage_2_train_images/<patientId>.dcm

An image has one row per box (``Target`` 1) or one row without a box (``Target`` 0). Boxes are
in the 1024 x 1024 pixel space of the DICOMs and are stored as fractions (``/ 1024``). One image
per patient in this set, so ``patient_id`` = ``image_id`` = ``patientId``. The label is named
``Pneumonia`` (the challenge's "Lung Opacity" evidence of pneumonia). With ``read_headers``
(default on) the found DICOMs' headers give ``view`` (``ViewPosition``), ``sex`` (``PatientSex``)
and ``age`` (``PatientAge``, e.g. ``"045"``), pixels not read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import (
    base_dir,
    boxes_frame,
    dicom_headers,
    find_table,
    make_frame,
    read_csv,
    require_columns,
)
from chestxai.data.table import ImageTable

log = logging.getLogger(__name__)

LABEL = "Pneumonia"
SIZE = 1024.0
LABEL_PATTERNS = (
    "stage_2_train_labels.csv",
    "*stage_2_train_labels.csv",
    "stage_1_train_labels.csv",
    "*train_labels.csv",
)
IMAGE_DIRS = ("stage_2_train_images", "stage_1_train_images", "train_images", "images")


def boxes_from_labels(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The boxes of a label table (rows that have one), as fractions of the 1024 px DICOMs."""
    box_rows = df.dropna(subset=["x", "y", "width", "height"])
    no_box = box_rows["Target"] != 1
    if no_box.any():
        raise ValueError(
            f"{path}: row {int(box_rows.index[no_box.to_numpy()][0]) + 2} has a box but Target 0"
        )
    return boxes_frame(
        box_rows["patientId"].str.strip(),
        [LABEL] * len(box_rows),
        box_rows["x"] / SIZE,
        box_rows["y"] / SIZE,
        box_rows["width"] / SIZE,
        box_rows["height"] / SIZE,
    )


def read_boxes(path: Path) -> pd.DataFrame:
    """``stage_2_train_labels.csv`` (or .zip/.gz) as it is distributed -> boxes side table (fractions)."""
    df = read_csv(path, "RSNA label table", dtype={"patientId": str})
    require_columns(df, ["patientId", "x", "y", "width", "height", "Target"], path, "RSNA label table")
    return boxes_from_labels(df, path)


@READERS.register("rsna")
def read(root: Path, labels_file: str | None = None, read_headers: bool = True) -> ImageTable:
    """Read the RSNA pneumonia labels (and images when present) at ``root``."""
    root = Path(root).expanduser()
    folder = base_dir(root)
    path = (
        folder / labels_file
        if labels_file
        else find_table(
            root,
            LABEL_PATTERNS,
            "RSNA label table (stage_2_train_labels.csv)",
            "Put stage_2_train_labels.csv (or its .zip) in --root, or pass the file itself.",
        )
    )
    if not path.is_file():
        raise FileNotFoundError(f"RSNA label table {path} not found; check labels_file= and --root")
    df = read_csv(path, "RSNA label table", dtype={"patientId": str})
    require_columns(df, ["patientId", "x", "y", "width", "height", "Target"], path, "RSNA label table")
    df["patientId"] = df["patientId"].str.strip()
    target = df.groupby("patientId", sort=False)["Target"].agg(["min", "max"])
    conflict = target.index[target["min"] != target["max"]]
    if len(conflict):
        raise ValueError(f"{path}: image {conflict[0]} has rows with Target 0 and 1; the table is corrupt")
    ids = target.index.tolist()
    labels = target["max"].to_numpy(dtype=np.float32).reshape(-1, 1)

    boxes = boxes_from_labels(df, path)
    notes = [
        f"{path.name}: {len(df)} rows, {len(ids)} images, {int(labels.sum())} positive, {len(boxes)} boxes "
        f"(1024-pixel coordinates / 1024 -> fractions)"
    ]
    missing_box = int(labels.sum()) - boxes["image_id"].nunique()
    if missing_box:
        notes.append(f"{missing_box} positive images carry no box")

    image_dir = next((folder / d for d in IMAGE_DIRS if (folder / d).is_dir()), folder / IMAGE_DIRS[0])
    paths = [image_dir / f"{i}.dcm" for i in ids]
    n_found = sum(p.is_file() for p in paths) if image_dir.is_dir() else 0
    if n_found < len(ids):
        notes.append(f"{len(ids) - n_found} of {len(ids)} DICOMs not found in {image_dir}")

    meta: dict[str, list] = {}
    info = folder / "stage_2_detailed_class_info.csv"
    if info.is_file():
        cls = (
            read_csv(info, "RSNA class info", dtype=str)
            .drop_duplicates("patientId")
            .set_index("patientId")["class"]
        )
        meta["rsna_class"] = [cls.get(i, "") for i in ids]
        notes.append(f"{info.name}: class per image in column rsna_class")
    demo = {"view": [""] * len(ids), "sex": [""] * len(ids), "age": [""] * len(ids)}
    if n_found and read_headers:
        hit = [k for k, p in enumerate(paths) if p.is_file()]
        headers = dicom_headers([paths[k] for k in hit])
        for name, values in demo.items():
            for j, k in enumerate(hit):
                values[k] = headers[name][j]
        notes.append(f"view, sex and age read from {len(hit)} DICOM headers")
    view = demo.pop("view")
    frame = make_frame(image_id=ids, path=paths, patient_id=ids, view=view, split="", **demo, **meta)
    log.info("rsna %s: %d images, %d boxes", path, len(ids), len(boxes))
    return ImageTable(
        source="rsna",
        frame=frame,
        label_names=[LABEL],
        labels=labels,
        task="binary",
        boxes=boxes.reset_index(drop=True),
        root=folder,
        notes=notes,
    )

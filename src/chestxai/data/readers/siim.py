"""SIIM-ACR pneumothorax segmentation (Kaggle 2019): DICOM images + run-length masks.

Layout as distributed::

    train-rle.csv            ImageId, EncodedPixels   (stage 1; note the leading space: " EncodedPixels")
    stage_2_train.csv        same columns, stage 2 (stage-1 train + stage-1 test, labelled)
    dicom-images-train/<study>/<series>/<ImageId>.dcm   (any depth is accepted)

An image has one row per pneumothorax region, or one row ``-1`` when it has none. The label
``Pneumothorax`` is 1 when any row of the image carries a mask. Each mask row goes to the masks
side table as ``kind="rle"`` (``ref`` = the string, 1024 x 1024); :func:`chestxai.data.masks.load_mask`
unions the rows of an image. The RLE orientation is documented in ``chestxai.data.masks``.

DICOMs are matched by file stem (= ``ImageId``, the SOP Instance UID). When they are present,
``read_headers`` (default on) reads ``PatientID``, ``ViewPosition``, ``PatientSex`` and
``PatientAge`` from each header
(pixels are not read); otherwise the patient id is the ``ImageId`` (SIIM images were
anonymised one patient per image) and the view is blank. DICOMs without a label row (the test
images) are not listed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import (
    base_dir,
    dicom_headers,
    find_table,
    index_files,
    make_frame,
    read_csv,
    require_columns,
    walk_files,
)
from chestxai.data.table import ImageTable

log = logging.getLogger(__name__)

LABEL = "Pneumothorax"
SIZE = 1024  # every SIIM DICOM is 1024 x 1024
RLE_PATTERNS = ("train-rle.csv", "stage_2_train.csv", "*train-rle.csv", "*train*rle*.csv", "*rle*.csv")


@READERS.register("siim")
def read(root: Path, labels_file: str | None = None, read_headers: bool = True) -> ImageTable:
    """Read SIIM-ACR at ``root`` (folder with the RLE csv and DICOMs, or the csv itself)."""
    root = Path(root).expanduser()
    folder = base_dir(root)
    path = (
        folder / labels_file
        if labels_file
        else find_table(
            root,
            RLE_PATTERNS,
            "SIIM RLE table (train-rle.csv)",
            "Put train-rle.csv (or stage_2_train.csv) in --root, or pass the file itself.",
        )
    )
    if not path.is_file():
        raise FileNotFoundError(f"SIIM RLE table {path} not found; check labels_file= and --root")
    df = read_csv(path, "SIIM RLE table", dtype=str, keep_default_na=False)
    require_columns(df, ["ImageId", "EncodedPixels"], path, "SIIM RLE table")
    df["ImageId"] = df["ImageId"].str.strip()
    df["EncodedPixels"] = df["EncodedPixels"].str.strip()
    has_mask = ~df["EncodedPixels"].isin(["-1", ""])

    ids = df["ImageId"].drop_duplicates().tolist()  # first-appearance order
    positive = set(df.loc[has_mask, "ImageId"])
    mixed = set(df.loc[~has_mask, "ImageId"]) & positive
    notes = [
        f"{path.name}: {len(df)} rows, {len(ids)} images, {len(positive)} with pneumothorax "
        f"({int(has_mask.sum())} mask rows); -1 = no pneumothorax"
    ]
    if mixed:
        notes.append(f"{len(mixed)} images have both -1 and mask rows; they count as positive")
    labels = np.array([[1.0 if i in positive else 0.0] for i in ids], dtype=np.float32).reshape(len(ids), 1)

    skipped: list[dict] = []
    found = (
        index_files(walk_files(folder, (".dcm", ".dicom"), skipped=skipped), key="stem")
        if folder.is_dir()
        else {}
    )
    if skipped:
        notes.append(
            f"{len(skipped)} folders not searched for DICOMs (see skipped), e.g. {skipped[0]['path']}"
        )
    paths = [found.get(i, folder / f"{i}.dcm") for i in ids]
    present = [i in found for i in ids]
    n_found = sum(present)
    patients, views = list(ids), [""] * len(ids)
    sexes, ages = [""] * len(ids), [""] * len(ids)
    if n_found < len(ids):
        notes.append(f"{len(ids) - n_found} of {len(ids)} DICOMs not found under {folder}")
    if n_found and read_headers:
        hit = [k for k, p in enumerate(present) if p]
        headers = dicom_headers([paths[k] for k in hit])
        for j, k in enumerate(hit):
            patients[k] = headers["patient_id"][j] or ids[k]
            views[k], sexes[k], ages[k] = headers["view"][j], headers["sex"][j], headers["age"][j]
        notes.append(f"patient id, view, sex and age read from {n_found} DICOM headers")
    else:
        notes.append("patient id = ImageId (no DICOM headers read)")
    unlabeled = len(set(found) - set(ids))
    if unlabeled:
        notes.append(
            f"{unlabeled} DICOMs under {folder} have no row in {path.name} (test images?): not listed"
        )

    frame = make_frame(
        image_id=ids, path=paths, patient_id=patients, view=views, split="", sex=sexes, age=ages
    )
    rows = df.loc[has_mask]
    masks = pd.DataFrame(
        {
            "image_id": rows["ImageId"].to_numpy(),
            "label": LABEL,
            "kind": "rle",
            "ref": rows["EncodedPixels"].to_numpy(),
            "height": SIZE,
            "width": SIZE,
        }
    )
    log.info("siim %s: %d images, %d positive", path, len(ids), len(positive))
    return ImageTable(
        source="siim",
        frame=frame,
        label_names=[LABEL],
        labels=labels,
        task="binary",
        masks=masks.reset_index(drop=True),
        root=folder,
        notes=notes,
        skipped=skipped,
    )

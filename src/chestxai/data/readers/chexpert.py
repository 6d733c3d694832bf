"""CheXpert (Irvin et al., AAAI 2019): 14 observations with uncertain labels, frontal and lateral views.

Layout as distributed::

    CheXpert-v1.0[-small]/train.csv, valid.csv   (also .gz; or pass one csv as root)
    CheXpert-v1.0[-small]/train/patient00001/study1/view1_frontal.jpg ...

The ``Path`` column starts with the dataset folder name (``CheXpert-v1.0-small/train/...``); it
is resolved against the folder holding the csv, whichever name that folder has.

Label values and the policies applied (stated in the table's notes):

* ``1`` positive, ``0`` negative;
* ``-1`` uncertain -> ``uncertainty``: ``ones`` (U-Ones), ``zeros`` (U-Zeros) or ``ignore``
  (U-Ignore: NaN, masked out of the loss), the policies compared in the CheXpert paper;
* blank (not mentioned in the report) -> ``0``, as the CheXpert paper and its reference labeler
  treat unmentioned observations as negative.

``views``: ``frontal`` (default; the paper's models use frontal images), ``lateral`` or ``all``.
``train.csv`` rows get split ``train``, ``valid.csv`` rows ``val`` (the official validation set,
which has no uncertain labels). Patient ids come from the path (``patient00001``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import base_dir, find_table, make_frame, read_csv, require_columns
from chestxai.data.table import ImageTable

log = logging.getLogger(__name__)

LABELS = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
]  # fmt: skip
POLICIES = {"ones": 1.0, "zeros": 0.0, "ignore": np.nan}
VIEWS = ("frontal", "lateral", "all")


def _files(root: Path) -> list[tuple[Path, str]]:
    """(csv path, split) pairs: the file given, or train.csv and valid.csv found in ``root``."""
    if root.is_file():
        name = root.name.lower()
        return [(root.absolute(), "val" if "valid" in name else "test" if "test" in name else "train")]
    out = []
    for stem, split in (("train", "train"), ("valid", "val")):
        try:
            out.append((find_table(root, (f"{stem}.csv",), f"CheXpert {stem}.csv"), split))
        except FileNotFoundError:
            continue
    if not out:
        # reuse find_table's message: it names what was looked for and where
        find_table(
            root,
            ("train.csv", "valid.csv"),
            "CheXpert label table (train.csv / valid.csv)",
            "Point --root at the CheXpert-v1.0(-small) folder or at the csv itself.",
        )
    return out


def _image_ids(paths: pd.Series) -> pd.Series:
    """``CheXpert-v1.0-small/train/p/s/v.jpg`` -> ``train/p/s/v.jpg`` (vectorised: 223k rows)."""
    rel = paths.str.strip().str.replace("\\", "/", regex=False)
    return rel.str.replace(r"^[Cc]he[Xx]pert[^/]*/", "", regex=True)


@READERS.register("chexpert")
def read(root: Path, views: str = "frontal", uncertainty: str = "ignore") -> ImageTable:
    """Read CheXpert ``train.csv``/``valid.csv`` at ``root`` (see the module docstring for policies)."""
    root = Path(root).expanduser()
    if views not in VIEWS:
        raise ValueError(f"views={views!r}; choose one of {VIEWS}")
    policy = uncertainty.lower().removeprefix("u-")
    if policy not in POLICIES:
        raise ValueError(f"uncertainty={uncertainty!r}; choose one of {sorted(POLICIES)} (what -1 becomes)")
    folder = base_dir(root)
    frames, notes = [], []
    for path, split in _files(root):
        df = read_csv(path, "CheXpert label table", dtype={"Path": str, "Frontal/Lateral": str, "AP/PA": str})
        require_columns(df, ["Path", "Frontal/Lateral", *LABELS], path, "CheXpert table")
        df["split"] = split
        notes.append(f"{path.name}: {len(df)} rows -> split {split}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)

    fl = df["Frontal/Lateral"].fillna("").str.strip().str.lower()
    if views != "all":
        keep = (fl == views).to_numpy()
        notes.append(
            f"views={views}: kept {int(keep.sum())} of {len(df)} images ({len(df) - int(keep.sum())} dropped)"
        )
        df, fl = df.loc[keep].reset_index(drop=True), fl[keep].reset_index(drop=True)

    raw = df[LABELS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)
    bad = ~np.isin(raw, [1, 0, -1]) & ~np.isnan(raw)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ValueError(f"row {i + 2} column {LABELS[j]!r}: value {raw[i, j]} is not 1, 0, -1 or blank")
    n_uncertain, n_blank = int((raw == -1).sum()), int(np.isnan(raw).sum())
    labels = raw.copy()
    labels[np.isnan(raw)] = 0.0
    labels[raw == -1] = POLICIES[policy]
    notes.append(
        f"uncertain (-1) -> {policy} ({n_uncertain} labels); blank -> 0 (negative, as in the CheXpert "
        f"paper) ({n_blank} labels)"
    )

    image_ids = _image_ids(df["Path"])
    patient = df["Path"].str.extract(r"(patient\d+)", expand=False)
    if patient.isna().any():
        row = int(np.flatnonzero(patient.isna().to_numpy())[0])
        raise ValueError(
            f"Path {df['Path'].iloc[row]!r} carries no patientNNNNN folder; is this a CheXpert table?"
        )
    study = df["Path"].str.extract(r"(study\d+)", expand=False).fillna("")
    appa = df["AP/PA"].fillna("").str.strip() if "AP/PA" in df.columns else pd.Series([""] * len(df))
    # the view column holds AP/PA for frontal images and LATERAL for laterals (AP/PA is blank there)
    view = np.where(fl.to_numpy() == "lateral", "LATERAL", appa.to_numpy())
    frame = make_frame(
        image_id=image_ids,
        path=str(folder) + os.sep + image_ids,
        patient_id=patient,
        view=view,
        split=df["split"],
        study=patient + "/" + study,
        frontal_lateral=df["Frontal/Lateral"].fillna(""),
        sex=df["Sex"] if "Sex" in df.columns else [""] * len(df),
        age=df["Age"] if "Age" in df.columns else [np.nan] * len(df),
    )
    log.info("chexpert %s: %d images (%s views), uncertainty=%s", folder, len(frame), views, policy)
    return ImageTable(
        source="chexpert",
        frame=frame,
        label_names=list(LABELS),
        labels=labels,
        task="multilabel",
        root=folder,
        notes=notes,
    )

"""NIH ChestX-ray14 (Wang et al., CVPR 2017): 14 findings, patient ids, views, boxes, official split.

Layout as distributed (Box or Kaggle mirror), everything optional except the label table::

    Data_Entry_2017.csv | Data_Entry_2017_v2020.csv   (also .gz / .zip; or pass the file as root)
    BBox_List_2017.csv                                 boxes, 1024 x 1024 pixel space of the release
    train_val_list.txt, test_list.txt                  official patient-wise split
    images/*.png | images_001/images/*.png ...          the images

``Finding Labels`` are ``|``-joined over the 14 labels; ``No Finding`` is a row of zeros (or its
own column with ``include_no_finding=True``). When both tables are present the ``_v2020`` one is
read: same images and labels, corrected ages (the 2017 file has ages up to 414) and renumbered
follow-ups. Box labels use the canonical names of :data:`SYNONYMS` (the box file says
``Infiltrate`` for the label ``Infiltration``). Boxes are stored as fractions of the image
(``/ bbox_size``, 1024 for the original release), so they fit any resized copy.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import (
    base_dir,
    boxes_frame,
    find_table,
    make_frame,
    read_csv,
    require_columns,
)
from chestxai.data.table import ImageTable, empty_boxes
from chestxai.labels import NIH14, NO_FINDING, SYNONYMS, canonical  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

LABELS = NIH14
ENTRY_PATTERNS = ("Data_Entry_2017_v2020*.csv", "Data_Entry_2017*.csv")
BBOX_PATTERNS = ("BBox_List_2017*.csv",)
REQUIRED = ("Image Index", "Finding Labels", "Patient ID")


def _image_index(folder: Path) -> dict[str, Path]:
    """``name -> path`` for PNGs in ``images/``, ``images_*/images/`` (Kaggle), ``images_*/``, ``folder``."""
    dirs = [folder / "images"]
    for d in sorted(folder.glob("images_*")):
        dirs += [d / "images", d]
    dirs.append(folder)
    out: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        with os.scandir(d) as it:
            for e in it:
                if e.name.lower().endswith(".png") and e.is_file():
                    out.setdefault(e.name, Path(e.path))
    return out


def _read_list(folder: Path, stem: str) -> set[str] | None:
    for name in (f"{stem}.txt", f"{stem}.txt.gz"):
        p = folder / name
        if p.is_file():
            return set(pd.read_csv(p, header=None, names=["name"], dtype=str)["name"].str.strip())
    return None


def read_boxes(path: Path, bbox_size: float = 1024.0) -> pd.DataFrame:
    """``BBox_List_2017.csv`` -> boxes side table (fractions). Handles both header variants:
    ``Bbox [x,y,w,h],,,`` (the release: the bracket splits into four columns) and ``x,y,w,h``."""
    raw = read_csv(path, "NIH box list")
    if raw.shape[1] < 6 or list(raw.columns[:2]) != ["Image Index", "Finding Label"]:
        raise ValueError(
            f"{path} is not an NIH box list: expected columns 'Image Index, Finding Label, x, y, w, h' "
            f"(or 'Bbox [x,y,w,h]'), found {list(raw.columns)}"
        )
    raw = raw.iloc[:, :6]
    raw.columns = ["image_id", "label", "x", "y", "w", "h"]
    raw = raw.dropna(subset=["x", "y", "w", "h"])
    s = float(bbox_size)
    return boxes_frame(
        raw["image_id"].str.strip(),
        [canonical(v) for v in raw["label"]],
        raw["x"] / s,
        raw["y"] / s,
        raw["w"] / s,
        raw["h"] / s,
    )


def labels_from_findings(findings: pd.Series, where: str, include_no_finding: bool = False) -> np.ndarray:
    """``|``-joined finding strings -> float32 N x 14 (x 15 with ``No Finding``)."""
    dummies = findings.fillna("").astype(str).str.get_dummies(sep="|")
    dummies.columns = [canonical(c) for c in dummies.columns]
    dummies = dummies.T.groupby(level=0).max().T  # merge synonyms that mapped onto one name
    known = set(LABELS) | {NO_FINDING}
    unknown = [c for c in dummies.columns if c not in known]
    if unknown:
        row = int(np.flatnonzero(dummies[unknown[0]].to_numpy())[0])
        raise ValueError(
            f"{where}: unknown finding {unknown[0]!r} (row {row + 2}: {findings.iloc[row]!r}); "
            f"expected the 14 ChestX-ray14 labels or 'No Finding'"
        )
    names = LABELS + ([NO_FINDING] if include_no_finding else [])
    return dummies.reindex(columns=names, fill_value=0).to_numpy(dtype=np.float32)


@READERS.register("nih")
def read(
    root: Path,
    labels_file: str | None = None,
    bbox_file: str | None = None,
    bbox_size: float = 1024.0,
    include_no_finding: bool = False,
    official_split: bool = True,
) -> ImageTable:
    """Read ChestX-ray14 at ``root`` (folder, or the ``Data_Entry_2017*.csv`` file itself).

    Options: ``labels_file`` / ``bbox_file`` (pick a file when several are present; relative to
    the folder), ``bbox_size`` (pixel size the box coordinates refer to), ``include_no_finding``
    (a 15th label column), ``official_split`` (use ``train_val_list.txt``/``test_list.txt``).
    """
    root = Path(root).expanduser()
    folder = base_dir(root)
    entry = (
        folder / labels_file
        if labels_file
        else find_table(
            root,
            ENTRY_PATTERNS,
            "NIH label table (Data_Entry_2017.csv)",
            "Download Data_Entry_2017.csv (or _v2020) from the NIH Box folder and put it in --root.",
        )
    )
    if not entry.is_file():
        raise FileNotFoundError(f"NIH label table {entry} not found; check labels_file= and --root")
    df = read_csv(entry, "NIH label table", dtype={"Image Index": str, "Finding Labels": str})
    require_columns(df, REQUIRED, entry, "NIH Data_Entry_2017 table")
    df = df.loc[:, [c for c in df.columns if not c.startswith("Unnamed")]]
    df["Image Index"] = df["Image Index"].str.strip()
    if df["Image Index"].duplicated().any():
        dup = df.loc[df["Image Index"].duplicated(), "Image Index"].iloc[0]
        raise ValueError(f"{entry}: image {dup} is listed twice")
    labels = labels_from_findings(df["Finding Labels"], str(entry), include_no_finding)
    notes = [
        f"{entry.name}: {len(df)} rows; 'No Finding' = all 14 labels 0"
        + ("; plus its own column" if include_no_finding else "")
    ]

    found = _image_index(folder)
    expected = str(folder / "images") + os.sep  # where a missing image would be
    paths = [str(found[n]) if n in found else expected + n for n in df["Image Index"]]
    n_found = sum(n in found for n in df["Image Index"])
    if n_found < len(df):
        notes.append(
            f"{len(df) - n_found} of {len(df)} images not under {folder} (images/, images_*/images/)"
        )

    split = [""] * len(df)
    if official_split:
        test, trainval = _read_list(folder, "test_list"), _read_list(folder, "train_val_list")
        if test is not None or trainval is not None:
            test, trainval = test or set(), trainval or set()
            split = ["test" if n in test else "train" if n in trainval else "" for n in df["Image Index"]]
            unassigned = split.count("")
            notes.append(
                "official split: test_list.txt -> test, train_val_list.txt -> train"
                + (f"; {unassigned} images in neither list have no split" if unassigned else "")
            )
        else:
            notes.append(
                "no train_val_list.txt / test_list.txt: no official split; `chestxai train` makes a "
                "patient-grouped one (--set data.val_fraction=0.1 --set data.test_fraction=0.2)"
            )

    def col(name: str, default: object = "") -> pd.Series | list:
        return df[name] if name in df.columns else [default] * len(df)

    frame = make_frame(
        image_id=df["Image Index"],
        path=paths,
        patient_id=df["Patient ID"].astype(str).str.strip(),
        view=pd.Series(col("View Position")).fillna("").astype(str),
        split=split,
        age=col("Patient Age", np.nan),
        sex=col("Patient Gender"),
        follow_up=col("Follow-up #", np.nan),
        orig_width=col("OriginalImage[Width", np.nan),
        orig_height=col("Height]", np.nan),
    )

    boxes = empty_boxes()
    bbox_path = None
    if bbox_file:
        bbox_path = folder / bbox_file
        if not bbox_path.is_file():
            raise FileNotFoundError(f"box list {bbox_path} not found; check bbox_file= and --root")
    elif any(folder.glob("BBox_List_2017*.csv*")):
        bbox_path = find_table(folder, BBOX_PATTERNS, "NIH box list")
    if bbox_path is not None:
        boxes = read_boxes(bbox_path, bbox_size)
        listed = set(frame["image_id"])
        outside = ~boxes["image_id"].isin(listed)
        if outside.any():
            notes.append(f"{int(outside.sum())} boxes of images absent from {entry.name} dropped")
            boxes = boxes[~outside].reset_index(drop=True)
        notes.append(
            f"{bbox_path.name}: {len(boxes)} boxes on {boxes['image_id'].nunique()} images, "
            f"pixel coordinates / {bbox_size:g} (fractions); 'Infiltrate' = Infiltration"
        )
    log.info("nih %s: %d images, %d boxes", entry, len(frame), len(boxes))
    return ImageTable(
        source="nih",
        frame=frame,
        label_names=LABELS + ([NO_FINDING] if include_no_finding else []),
        labels=labels,
        task="multilabel",
        boxes=boxes,
        root=folder,
        notes=notes,
    )

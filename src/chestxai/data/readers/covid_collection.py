"""COVID-19 image data collection (Cohen et al., github ieee8023/covid-chestxray-dataset).

Layout as distributed::

    metadata.csv          patientid, finding, view, modality, folder, filename, ... (one row per image)
    images/<filename>     (``folder`` column names the folder; ``volumes/`` holds CT, skipped)
    lungVAE-masks/<stem>_mask.png   optional lung masks (anatomy, not lesions)

Kept rows: ``modality == X-ray`` and a frontal ``view`` (PA, AP, AP Supine, AP semi erect, AP
erect...: anything starting with PA or AP); laterals (``L``), CT planes and ``?`` are dropped,
with counts in the notes.

The ``finding`` column changed between snapshots: the June 2020 one (the copy in shared/data)
holds flat names, some comma-joined (``COVID-19``, ``SARS``, ``COVID-19, ARDS``, ``No Finding``);
newer ones a hierarchy (``Pneumonia/Viral/COVID-19``, ``Pneumonia/Bacterial/Streptococcus``).
``label_mode`` says how to read it:

* ``finding`` (default): ``multiclass`` over the finding strings exactly as written;
* ``leaf``: ``multiclass`` over the last part of a hierarchical finding
  (``Pneumonia/Viral/COVID-19`` -> ``COVID-19``; a comma list keeps its first part);
* ``multilabel``: every part of the hierarchy and of a comma list is a label
  (``Pneumonia/Viral/COVID-19`` -> Pneumonia, Viral, COVID-19; ``COVID-19, ARDS`` -> COVID-19, ARDS);
  ``No Finding`` is a row of zeros, not a label.

``positive="COVID-19"`` makes the task ``binary``: 1 when that name is any part of the finding.
Findings ``todo`` / ``Unknown`` / blank are unknown (NaN).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import base_dir, find_table, make_frame, one_hot, read_csv, require_columns
from chestxai.data.table import ImageTable, empty_masks

log = logging.getLogger(__name__)

MODES = ("finding", "leaf", "multilabel")
UNKNOWN = {"", "todo", "unknown", "nan"}
MASK_DIR = "lungVAE-masks"
NO_FINDING = "No Finding"


def is_frontal(view: object) -> bool:
    return str(view).strip().upper().startswith(("PA", "AP"))


def parts(finding: str) -> list[str]:
    """``Pneumonia/Viral/COVID-19`` or ``COVID-19, ARDS`` -> its parts, in order."""
    return [p.strip() for p in re.split(r"[/,]", finding) if p.strip()]


def _labels(findings: list[str | None], mode: str, positive: str | None) -> tuple[list[str], np.ndarray, str]:
    if positive is not None:
        known = {p for f in findings if f for p in parts(f)}
        if positive not in known:
            raise ValueError(f"positive={positive!r} is not part of any finding; parts seen: {sorted(known)}")
        vals = [[np.nan] if f is None else [float(positive in parts(f))] for f in findings]
        return [positive], np.array(vals, dtype=np.float32).reshape(-1, 1), "binary"
    if mode == "multilabel":
        names = sorted({p for f in findings if f for p in parts(f)} - {NO_FINDING})
        pos = {n: j for j, n in enumerate(names)}
        out = np.zeros((len(findings), len(names)), dtype=np.float32)
        for i, f in enumerate(findings):
            if f is None:
                out[i] = np.nan
            else:
                for p in parts(f):
                    if p != NO_FINDING:
                        out[i, pos[p]] = 1.0
        return names, out, "multilabel"
    if mode == "leaf":
        findings = [None if f is None else _leaf(f) for f in findings]
    names = sorted({f for f in findings if f is not None})
    return names, one_hot(findings, names).reshape(len(findings), len(names)), "multiclass"


def _leaf(finding: str) -> str:
    first = finding.split(",")[0]
    return first.split("/")[-1].strip()


@READERS.register("covid-collection")
def read(
    root: Path,
    label_mode: str = "finding",
    positive: str | None = None,
    masks: bool = True,
    mask_label: str = "Lungs",
) -> ImageTable:
    """Read the collection's ``metadata.csv`` (frontal X-rays only; see the module docstring)."""
    if label_mode not in MODES:
        raise ValueError(f"label_mode={label_mode!r}; choose one of {MODES}")
    root = Path(root).expanduser()
    folder = base_dir(root)
    path = find_table(
        root,
        ("metadata.csv",),
        "COVID-19 collection metadata.csv",
        "Point --root at a clone of ieee8023/covid-chestxray-dataset (it holds metadata.csv and images/).",
    )
    df = read_csv(path, "COVID-19 collection metadata", dtype=str, keep_default_na=False)
    require_columns(
        df, ["patientid", "finding", "view", "modality", "filename"], path, "COVID-19 collection metadata"
    )
    notes = [f"{path.name}: {len(df)} rows"]
    xray = df["modality"].str.strip().str.lower() == "x-ray"
    frontal = df["view"].map(is_frontal)
    if (~xray).any():
        notes.append(f"dropped {int((~xray).sum())} non-X-ray rows (CT...)")
    if (xray & ~frontal).any():
        dropped = df.loc[xray & ~frontal, "view"].value_counts().to_dict()
        notes.append(f"dropped {int((xray & ~frontal).sum())} non-frontal X-rays (views {dropped})")
    df = df.loc[xray & frontal].reset_index(drop=True)
    dup = df["filename"].duplicated()
    if dup.any():
        notes.append(f"dropped {int(dup.sum())} rows repeating a filename")
        df = df.loc[~dup].reset_index(drop=True)

    findings = [None if str(f).strip().lower() in UNKNOWN else str(f).strip() for f in df["finding"]]
    if any(f is None for f in findings):
        notes.append(
            f"{sum(f is None for f in findings)} rows with finding todo/Unknown/blank: label unknown (NaN)"
        )
    label_names, labels, task = _labels(findings, label_mode, positive)
    notes.append(f"labels: {task} ({'positive=' + positive if positive else 'label_mode=' + label_mode})")

    sub = df["folder"].str.strip() if "folder" in df.columns else pd.Series(["images"] * len(df))
    paths = [folder / (s or "images") / f for s, f in zip(sub, df["filename"], strict=True)]
    n_found = sum(p.is_file() for p in paths)
    if n_found < len(paths):
        notes.append(f"{len(paths) - n_found} of {len(paths)} images not found under {folder}")

    mask_table = empty_masks()
    if masks and (folder / MASK_DIR).is_dir():
        rows = []
        for f in df["filename"]:
            m = folder / MASK_DIR / f"{Path(f).stem}_mask.png"
            if m.is_file():
                rows.append(
                    {
                        "image_id": f,
                        "label": mask_label,
                        "kind": "png",
                        "ref": str(m),
                        "height": np.nan,
                        "width": np.nan,
                    }
                )
        mask_table = pd.DataFrame(rows, columns=list(mask_table.columns))
        notes.append(f"{len(rows)} lung masks from {MASK_DIR}/ (anatomy, label {mask_label!r})")

    def col(name: str) -> pd.Series | list:
        return df[name] if name in df.columns else [""] * len(df)

    frame = make_frame(
        image_id=df["filename"],
        path=paths,
        patient_id=df["patientid"].str.strip(),
        view=df["view"].str.strip(),
        split="",
        finding=df["finding"],
        sex=col("sex"),
        age=col("age"),
        site=col("location"),  # the hospital/city the collection records; blank -> the reader's name
        offset=col("offset"),
        license=col("license"),
    )
    log.info("covid-collection %s: %d frontal X-rays", folder, len(frame))
    return ImageTable(
        source="covid-collection",
        frame=frame,
        label_names=label_names,
        labels=labels,
        task=task,
        masks=mask_table,
        root=folder,
        notes=notes,
    )

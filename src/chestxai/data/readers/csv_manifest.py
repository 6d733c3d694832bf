"""Any CSV manifest: one row per image, a path column and labels in one of three forms.

1. **one label column** (``label_col``): single-label -> ``multiclass`` one-hot over the sorted
   distinct values, or ``binary`` when ``positive=`` names the positive value (compared as text);
2. **several 0/1 columns** (``label_cols="A,B,C"``): ``multilabel``; blank or ``-1`` = unknown
   (NaN), anything else is an error naming the row and column;
3. **one separator-joined column** (``label_col`` + ``sep="|"``): ``multilabel`` over the
   distinct parts, sorted; ``none_label`` (e.g. ``"No Finding"``) marks an all-negative row.

In every form a blank label makes the row unknown (NaN). ``root`` is the CSV file, or a folder
holding exactly one ``.csv`` (``manifest=`` picks one by name). Relative image paths are resolved
against ``image_root`` (default: the CSV's folder). ``patient_col`` defaults to one patient per
image (the file stem), ``split_col`` to no split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import as_list, make_frame, normalize_split, one_hot, read_csv
from chestxai.data.table import ImageTable

log = logging.getLogger(__name__)


def _manifest(root: Path, manifest: str | None) -> Path:
    root = Path(root).expanduser().absolute()
    if manifest is not None:
        path = Path(manifest) if Path(manifest).is_absolute() else root / manifest
        if not path.is_file():
            raise FileNotFoundError(f"manifest {path} not found; check --root and the manifest= option")
        return path
    if root.is_file():
        return root
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist; pass --root the manifest CSV or its folder")
    found = sorted(p for p in root.iterdir() if p.is_file() and p.name.lower().endswith((".csv", ".csv.gz")))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no .csv manifest in {root}; pass --root the CSV file itself")
    raise ValueError(
        f"{len(found)} CSV files in {root} ({', '.join(p.name for p in found[:5])}); "
        f"choose one with --option manifest=NAME or pass the file as --root"
    )


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _single(values: pd.Series, positive: object) -> tuple[list[str], np.ndarray, str, str]:
    text = [None if _blank(v) else str(v).strip() for v in values]
    if positive is not None:
        pos = str(positive).strip()
        if pos not in set(text):
            raise ValueError(
                f"positive={positive!r} never occurs in the label column; values: {sorted(set(text) - {None})[:10]}"
            )
        labels = np.array([[np.nan if t is None else float(t == pos)] for t in text], dtype=np.float32)
        return [pos], labels, "binary", f"binary: {pos!r} = 1, every other value = 0"
    names = sorted({t for t in text if t is not None})
    return (
        names,
        one_hot(text, names).reshape(len(text), len(names)),
        "multiclass",
        "multiclass one-hot over label values",
    )


def _columns01(df: pd.DataFrame, cols: list[str], path: Path) -> np.ndarray:
    out = np.full((len(df), len(cols)), np.nan, dtype=np.float32)
    for j, c in enumerate(cols):
        num = pd.to_numeric(df[c], errors="coerce")
        bad = df[c].notna() & (df[c].astype(str).str.strip() != "") & ~num.isin([0, 1, -1])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{path}: column {c!r} row {i + 2} holds {df[c].iloc[i]!r}; label columns must be 0, 1, "
                f"-1 (unknown) or blank. Use label_col=/sep= for text labels"
            )
        vals = num.to_numpy(dtype=np.float64, copy=True)
        vals[vals == -1] = np.nan
        out[:, j] = vals
    return out


def _joined(values: pd.Series, sep: str, none_label: str | None) -> tuple[list[str], np.ndarray]:
    rows: list[set[str] | None] = []
    for v in values:
        if _blank(v):
            rows.append(None)
            continue
        parts = {p.strip() for p in str(v).split(sep) if p.strip()}
        if none_label is not None:
            parts.discard(none_label)
        rows.append(parts)
    names = sorted(set().union(*[r for r in rows if r is not None]))
    pos = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(rows), len(names)), dtype=np.float32)
    for i, r in enumerate(rows):
        if r is None:
            out[i] = np.nan
        else:
            for p in r:
                out[i, pos[p]] = 1.0
    return names, out


@READERS.register("csv")
def read(
    root: Path,
    manifest: str | None = None,
    path_col: str = "path",
    label_col: str | None = None,
    label_cols: str | list[str] | None = None,
    sep: str | None = None,
    positive: str | None = None,
    none_label: str | None = None,
    patient_col: str | None = None,
    split_col: str | None = None,
    view_col: str | None = None,
    id_col: str | None = None,
    image_root: str | None = None,
) -> ImageTable:
    """Read a CSV manifest (see the module docstring for the three label forms)."""
    path = _manifest(root, manifest)
    df = read_csv(path, "manifest", dtype=str, keep_default_na=False, na_values=[""])
    cols = as_list(label_cols)
    if label_col is None and cols is None:
        if "label" in df.columns:
            label_col = "label"
        else:
            raise ValueError(
                f"{path}: say where the labels are: --option label_col=COLUMN (one label, or with sep= "
                f"joined labels) or --option label_cols=A,B,C (0/1 columns). Columns: {list(df.columns)}"
            )
    if label_col is not None and cols is not None:
        raise ValueError("give either label_col (one column) or label_cols (several 0/1 columns), not both")
    needed = [path_col] + ([label_col] if label_col else cols or [])
    needed += [c for c in (patient_col, split_col, view_col, id_col) if c]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: columns {missing} not found (columns are {list(df.columns)}); set the *_col options"
        )
    empty_path = df[path_col].isna() | (df[path_col].astype(str).str.strip() == "")
    if empty_path.any():
        raise ValueError(
            f"{path}: row {int(np.flatnonzero(empty_path.to_numpy())[0]) + 2} has an empty {path_col!r}"
        )

    if cols is not None:
        label_names, labels, task = cols, _columns01(df, cols, path), "multilabel"
        note = f"multilabel over 0/1 columns {cols}; blank or -1 = unknown"
    elif sep is not None:
        label_names, labels = _joined(df[label_col], sep, none_label)
        task = "multilabel"
        note = f"multilabel: {label_col!r} split on {sep!r}" + (
            f"; {none_label!r} = all negative" if none_label else ""
        )
    else:
        label_names, labels, task, note = _single(df[label_col], positive)
    notes = [f"{path.name}: {note}"]
    unknown = int(np.isnan(labels).all(axis=1).sum()) if labels.shape[1] else 0
    if unknown:
        notes.append(f"{unknown} rows with a blank label are unknown (NaN)")

    base = Path(image_root).expanduser() if image_root else path.parent
    if not base.is_absolute():
        base = path.parent / base
    rel = [str(p).strip() for p in df[path_col]]
    files = [Path(p) if Path(p).is_absolute() else base / p for p in rel]
    frame = make_frame(
        image_id=df[id_col] if id_col else rel,
        path=files,
        patient_id=df[patient_col] if patient_col else [f.stem for f in files],
        view=df[view_col].fillna("") if view_col else "",
        split=[normalize_split(v, f"{path.name} column {split_col!r}") for v in df[split_col]]
        if split_col
        else "",
    )
    if frame["image_id"].duplicated().any():
        dup = frame.loc[frame["image_id"].duplicated(), "image_id"].iloc[0]
        raise ValueError(
            f"{path}: image {dup!r} is listed twice; a manifest has one row per image (or set id_col=)"
        )
    if not patient_col:
        notes.append("no patient column: each image is its own patient (set patient_col= to group)")
    extra = [c for c in df.columns if c not in set(needed) and c not in frame.columns]
    for c in extra:
        frame[c] = df[c].to_numpy()
    return ImageTable(
        source="csv",
        frame=frame,
        label_names=label_names,
        labels=labels,
        task=task,
        root=path.parent,
        notes=notes,
    )

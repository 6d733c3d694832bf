"""Any CSV manifest: one row per image, a path column and labels in one of three forms.

Layout::

    manifest.csv     path,<labels>[,patient,split,view,id]   (or a folder holding one .csv)
    <image paths>    relative to the CSV's folder (or image_root=); PNG/JPEG/DICOM

1. **one label column** (``label_col``): single-label -> ``multiclass`` one-hot over the sorted
   distinct values, or ``binary`` when ``positive=`` names the positive value (compared as text);
2. **several 0/1 columns** (``label_cols="A,B,C"``): ``multilabel``; blank or ``-1`` = unknown
   (NaN), anything else is an error naming the row and column;
3. **one separator-joined column** (``label_col`` + ``sep="|"``): ``multilabel`` over the
   distinct parts, sorted; ``none_label`` (e.g. ``"No Finding"``) marks an all-negative row.

In every form a blank label makes the row unknown (NaN), and so does label text that spells a
missing number (``nan``, ``NaN``, ``inf``, ``-inf``, ``NA``, ``N/A``, ``null``: what a spreadsheet
or pandas writes for an empty cell); those rows are logged as a warning, with their row numbers,
and counted in the notes. Never are they a class of their own or a silent negative.

``root`` is the CSV file, or a folder holding exactly one ``.csv`` (``manifest=`` picks one by
name). Relative image paths are resolved against ``image_root`` (default: the CSV's folder) and
normalised (``./imgs/x.png`` is ``imgs/x.png``, which is also its ``image_id``). A path that leads
outside that folder (``../..``, an absolute path elsewhere) is refused, naming the row, unless
``allow_outside_root=true`` (the check is on the written path: symlinks inside the folder are
trusted). Two rows naming the same file are merged when they agree (labels, patient, split, view)
and refused, naming both rows, when they do not. A manifest without rows is an error.
``patient_col`` defaults to the first column named ``patient_id``, ``patient``, ``patientid``,
``patient id`` or ``source_patient`` (``synth generate``'s manifests: a translated image keeps its
source's patient), matched ignoring case; without one, or with ``patient_col=none``, each image is
its own patient (the file stem), as is a row whose patient cell is blank. ``split_col`` defaults to
no split. Demographics: ``sex_col``, ``age_col``, ``site_col`` name the columns that become the
contract's ``sex``, ``age`` and ``site`` (columns already called so are kept as they are); their
values are normalised by :mod:`chestxai.data.demographics` (unknown stays missing).

**One finding, present or absent**: a single label column whose values are only ``NAME`` and/or
``not:NAME`` for one ``NAME`` (the domain spelling of :mod:`chestxai.synth.domains`, which
``synth generate`` writes in ``label``) loads as the ``binary`` task ``NAME`` (``NAME`` = 1,
``not:NAME`` = 0), never as a one-class multiclass task or a class called ``not:NAME``. A lone
normal-like value (``NORMAL``, ``No Finding``) is not taken for a finding; ``positive=`` overrides.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import (
    as_list,
    make_frame,
    normalize_split,
    one_hot,
    read_csv,
    within,
)
from chestxai.data.table import ImageTable
from chestxai.labels import is_normal_name

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


#: patient column names looked for (ignoring case) when ``patient_col`` is not given
PATIENT_COLUMNS = ("patient_id", "patient", "patientid", "patient id", "source_patient")
#: ``not:NAME`` in a label column means NAME is absent (chestxai.synth.domains.ABSENT_PREFIX)
ABSENT_PREFIX = "not:"
NO_PATIENT = "none"


def _patient_column(columns: list[str], given: str | None) -> str | None:
    """The patient column: ``given`` (``none``: no column), else the first of :data:`PATIENT_COLUMNS`."""
    if given is not None:
        return None if given.strip().lower() in (NO_PATIENT, "") else given
    lower = {c.lower(): c for c in reversed(columns)}
    return next((lower[c] for c in PATIENT_COLUMNS if c in lower), None)


def _absent_form(text: list[str | None]) -> str | None:
    """``NAME`` when the known values are only ``NAME`` and/or ``not:NAME`` for one ``NAME``.

    A lone normal-like value (``NORMAL``, ``No Finding``) is not read as a finding.
    """
    values = {t for t in text if t is not None}
    names = {t[len(ABSENT_PREFIX) :].strip() if t.lower().startswith(ABSENT_PREFIX) else t for t in values}
    if len(names) != 1:
        return None
    name = names.pop()
    return name if name and not is_normal_name(name) else None


# spellings of "no value" besides nan/inf (which float() parses); pandas' own NA strings
MISSING_TEXT = frozenset({"na", "n/a", "#n/a", "<na>", "null"})


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def is_missing_text(text: object) -> bool:
    """``nan``, ``NaN``, ``inf``, ``-Infinity``, ``N/A``, ``null``...: text that means "no value"."""
    low = str(text).strip().lower()
    if low in MISSING_TEXT:
        return True
    try:
        return not math.isfinite(float(low))
    except ValueError:
        return False


def _rows(positions: np.ndarray, limit: int = 10) -> str:
    """CSV row numbers (the header is row 1) of frame ``positions``, the first ``limit`` of them."""
    shown = ", ".join(str(int(i) + 2) for i in positions[:limit])
    return shown + (f" ... ({len(positions)} in all)" if len(positions) > limit else "")


def _blank_missing_text(df: pd.DataFrame, columns: list[str], path: Path) -> list[str]:
    """Blank out (= unknown) label cells holding ``nan``/``inf``/..., warn naming rows; notes."""
    notes = []
    for c in columns:
        cells = df[c].fillna("").astype(str)
        hit = cells.map(is_missing_text).to_numpy(dtype=bool)
        if hit.any():
            where = np.flatnonzero(hit)
            spelled = sorted(set(cells[hit].str.strip()))
            msg = (
                f"{path.name}: {len(where)} rows hold {spelled} in label column {c!r} (rows {_rows(where)}); "
                f"read as unknown (NaN), not as a class or a negative"
            )
            log.warning("%s", msg)
            notes.append(msg)
            df.loc[hit, c] = ""
    return notes


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
    absent = _absent_form(text)
    if absent is not None:
        labels = np.array([[np.nan if t is None else float(t == absent)] for t in text], dtype=np.float32)
        return [absent], labels, "binary", f"binary: {absent!r} = 1, {ABSENT_PREFIX + absent!r} = 0"
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


def _joined(values: pd.Series, sep: str, none_label: str | None, path: Path) -> tuple[list[str], np.ndarray]:
    rows: list[set[str] | None] = []
    for i, v in enumerate(values):
        if _blank(v):
            rows.append(None)
            continue
        parts = {p.strip() for p in str(v).split(sep) if p.strip()}
        odd = sorted(p for p in parts if is_missing_text(p))
        if odd:
            raise ValueError(
                f"{path}: row {i + 2} holds {v!r}: {odd} among the labels is no finding name. "
                f"Leave the cell blank for an unknown label, or fix the row"
            )
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


def _resolve(
    rel: list[str], base: Path, path: Path, allow_outside: bool, notes: list[str]
) -> tuple[list[Path], list[str]]:
    """Absolute normalised file paths and image ids (posix paths below ``base``) of manifest rows.

    Refuses rows leading outside ``base`` unless ``allow_outside``: a manifest shared with a
    dataset should not make ``prepare`` read (and cache) files elsewhere on the machine unnoticed.
    """
    files = [Path(os.path.normpath(Path(p) if Path(p).is_absolute() else base / p)) for p in rel]
    inside = np.array([within(str(f), str(base)) for f in files], dtype=bool)
    if not inside.all():
        where = np.flatnonzero(~inside)
        if not allow_outside:
            raise ValueError(
                f"{path}: row {int(where[0]) + 2} names {rel[where[0]]!r}, outside the image folder {base} "
                f"({len(where)} rows do: {_rows(where)}). Move the images under it, set image_root=, or "
                f"pass --option allow_outside_root=true if reading them is intended"
            )
        notes.append(f"allow_outside_root: {len(where)} rows name files outside {base} (rows {_rows(where)})")
    ids = [
        f.relative_to(base).as_posix() if ok else f.as_posix() for f, ok in zip(files, inside, strict=True)
    ]
    return files, ids


def _merge_duplicates(frame: pd.DataFrame, labels: np.ndarray, path: Path, notes: list[str]) -> np.ndarray:
    """Rows to keep: repeats of a file that agree with its first row are dropped, others refused.

    Paths are already normalised, so ``imgs/x.png`` and ``./imgs/x.png`` meet here.
    """
    keep = np.ones(len(frame), dtype=bool)
    dup = frame["path"].duplicated(keep=False).to_numpy()
    if not dup.any():
        return keep
    fields = ["image_id", "patient_id", "split", "view"]
    for _, rows in frame.loc[dup].groupby("path", sort=False).groups.items():
        first, *rest = (int(r) for r in rows)
        for r in rest:
            same = np.array_equal(labels[first], labels[r], equal_nan=True) and all(
                str(frame.at[first, c]) == str(frame.at[r, c]) for c in fields
            )
            if not same:
                raise ValueError(
                    f"{path}: rows {first + 2} and {r + 2} name the same image {frame.at[first, 'image_id']!r} "
                    f"with different labels, patient, split or view; keep one row per image"
                )
            keep[r] = False
    dropped = np.flatnonzero(~keep)
    msg = f"{path.name}: {len(dropped)} rows repeat an earlier row's image and labels: dropped (rows {_rows(dropped)})"
    log.warning("%s", msg)
    notes.append(msg)
    return keep


def _patients(values: pd.Series, files: list[Path]) -> list[str]:
    """The patient column's text; a blank cell is that image's own patient (its file stem)."""
    return [f.stem if _blank(v) else str(v).strip() for v, f in zip(values, files, strict=True)]


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
    sex_col: str | None = None,
    age_col: str | None = None,
    site_col: str | None = None,
    image_root: str | None = None,
    allow_outside_root: bool = False,
) -> ImageTable:
    """Read a CSV manifest (see the module docstring for the three label forms and path rules)."""
    path = _manifest(root, manifest)
    df = read_csv(path, "manifest", dtype=str, keep_default_na=False, na_values=[""])
    if df.empty:
        raise ValueError(
            f"{path}: no rows (only the header {list(df.columns)}); a manifest lists one image per row"
        )
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
    patient_col = _patient_column(list(df.columns), patient_col)
    needed = [path_col] + ([label_col] if label_col else cols or [])
    demographic = {"sex": sex_col, "age": age_col, "site": site_col}
    needed += [c for c in (patient_col, split_col, view_col, id_col, *demographic.values()) if c]
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

    notes = _blank_missing_text(df, [label_col] if label_col else list(cols or []), path)
    if cols is not None:
        label_names, labels, task = cols, _columns01(df, cols, path), "multilabel"
        note = f"multilabel over 0/1 columns {cols}; blank or -1 = unknown"
    elif sep is not None:
        label_names, labels = _joined(df[label_col], sep, none_label, path)
        task = "multilabel"
        note = f"multilabel: {label_col!r} split on {sep!r}" + (
            f"; {none_label!r} = all negative" if none_label else ""
        )
    else:
        label_names, labels, task, note = _single(df[label_col], positive)
    notes.insert(0, f"{path.name}: {note}")
    unknown = int(np.isnan(labels).all(axis=1).sum()) if labels.shape[1] else 0
    if unknown:
        notes.append(f"{unknown} rows with a blank or missing label are unknown (NaN)")

    base = Path(image_root).expanduser() if image_root else path.parent
    if not base.is_absolute():
        base = path.parent / base
    rel = [str(p).strip() for p in df[path_col]]
    files, ids = _resolve(rel, Path(os.path.normpath(base)), path, allow_outside_root, notes)
    frame = make_frame(
        image_id=df[id_col] if id_col else ids,
        path=files,
        patient_id=_patients(df[patient_col], files) if patient_col else [f.stem for f in files],
        view=df[view_col].fillna("") if view_col else "",
        split=[normalize_split(v, f"{path.name} column {split_col!r}") for v in df[split_col]]
        if split_col
        else "",
    )
    for name, col in demographic.items():
        if col:
            frame[name] = df[col].to_numpy()
            notes.append(f"{name} from column {col!r}")
    keep = _merge_duplicates(frame, labels, path, notes)
    if not keep.all():
        df, frame, labels = df[keep].reset_index(drop=True), frame[keep].reset_index(drop=True), labels[keep]
    if frame["image_id"].duplicated().any():
        dup = frame.loc[frame["image_id"].duplicated(), "image_id"].iloc[0]
        raise ValueError(
            f"{path}: image {dup!r} is listed twice; a manifest has one row per image (or set id_col=)"
        )
    if not patient_col:
        notes.append("no patient column: each image is its own patient (set patient_col= to group)")
    else:
        notes.append(f"patients from column {patient_col!r}: {frame['patient_id'].nunique()} patients")
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

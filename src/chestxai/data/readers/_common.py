"""Helpers shared by the readers: finding label files, listing images, building the frame.

Conventions every reader in this package follows (so downstream code can rely on them):

* ``path`` is an **absolute** path string. When the image is not on disk (label tables read
  alone) it is where the image *would* be in the source's distributed layout, so ``summary``
  can count what exists and ``prepare`` can name what is missing.
* ``image_id`` is the source's own identifier (NIH ``Image Index``, SIIM ``ImageId``, RSNA
  ``patientId``...), unique per row; ``patient_id`` is a string.
* ``split`` is ``train``/``val``/``test`` or ``""`` where the source defines none.
* the table's ``root`` is a folder (the parent when ``root`` was given as a file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.file_kind import not_regular

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
COMPRESSED = ("", ".gz", ".zip")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
SKIP_DIRS = {"__MACOSX"}  # resource-fork junk shipped inside some zips (e.g. the Kermany archive)


def base_dir(root: Path) -> Path:
    """The folder a table's relative paths hang from: ``root``, or its parent when it is a file."""
    root = Path(root).absolute()
    return root.parent if root.is_file() else root


def find_table(root: Path, patterns: Sequence[str], what: str, hint: str = "") -> Path:
    """Locate a label table in ``root`` (non-recursive); ``root`` may be the table file itself.

    Each glob in ``patterns`` is also tried with ``.gz`` and ``.zip`` appended (pandas reads
    them directly). Patterns are in order of preference; within one pattern the names sort.
    """
    root = Path(root).expanduser()
    if root.is_file():
        return root.absolute()
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist; pass --root the folder that holds the {what}")
    for pattern in patterns:
        for suffix in COMPRESSED:
            hits = sorted(p for p in root.glob(pattern + suffix) if p.is_file())
            if hits:
                if len(hits) > 1:
                    log.info(
                        "several %s in %s: %s; reading %s", what, root, [h.name for h in hits], hits[0].name
                    )
                return hits[0].absolute()
    raise FileNotFoundError(
        f"no {what} found in {root.absolute()} (looked for {', '.join(patterns)}, each also as .gz/.zip). "
        f"{hint or 'Point --root at the folder holding it, or at the file itself.'}"
    )


def read_csv(path: Path, what: str, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` with column names stripped of spaces and an error naming the file."""
    try:
        df = pd.read_csv(path, **kwargs)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


def require_columns(df: pd.DataFrame, columns: Iterable[str], path: Path | str, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path} does not look like the {what}: columns {missing} are missing "
            f"(found {list(df.columns)[:12]}); pass the right file or set the column options"
        )


def walk_files(
    root: Path,
    extensions: Iterable[str] | None = IMAGE_EXTENSIONS,
    prune: Callable[[str], bool] | None = None,
    skipped: list[dict] | None = None,
) -> list[Path]:
    """All regular files under ``root`` with one of ``extensions`` (case-insensitive; ``None``:
    any name), sorted.

    Hidden files and folders, ``__MACOSX`` and folders for which ``prune(name)`` is true are
    skipped. Symlinked folders are followed (a class folder linked in from elsewhere is part of
    the dataset), but each real folder is walked once, so no image is listed twice and a loop
    cannot recurse: a link pointing inside the dataset (it is walked under its real name), at a
    folder containing the dataset, or at a folder already walked through another link is not
    entered.

    Only regular files (after following symlinks) are returned: a FIFO would block whoever opens
    it forever and a device such as ``/dev/zero`` never ends, so those, dangling links and file
    links that loop are not opened but skipped with the reason from
    :func:`chestxai.data.file_kind.not_regular` (``not a regular file: fifo (named pipe)``...).

    Folders that could not be read (permissions, I/O errors), links not followed and files that
    are not regular are never dropped silently: each is logged as a warning and, when ``skipped``
    is given, appended to it as ``{"path": ..., "reason": ...}`` so the caller can report them.
    """
    exts = None if extensions is None else {e.lower() for e in extensions}
    out = []
    problems: list[dict] = []

    def unreadable(err: OSError) -> None:
        problems.append(
            {"path": str(err.filename or root), "reason": f"folder not readable: {err.strerror or err}"}
        )

    top = os.path.realpath(root)
    seen = {top}
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or d in SKIP_DIRS or (prune and prune(d)):
                continue
            full = os.path.join(dirpath, d)
            real = os.path.realpath(full)
            reason = _link_problem(full, real, top, seen)
            if reason:
                problems.append({"path": full, "reason": reason})
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith(".") or (exts is not None and os.path.splitext(name)[1].lower() not in exts):
                continue
            full = os.path.join(dirpath, name)
            reason = not_regular(full)
            if reason:
                problems.append({"path": full, "reason": reason})
            else:
                out.append(Path(full))
    for p in problems:
        log.warning("%s skipped: %s", p["path"], p["reason"])
    if skipped is not None:
        skipped.extend(problems)
    return sorted(out)


def within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both absolute and normalised)."""
    return os.path.commonpath([path, folder]) == folder


def _link_problem(full: str, real: str, top: str, seen: set[str]) -> str:
    """Why the folder ``full`` (real path ``real``) must not be walked, or ``""``."""
    if os.path.islink(full):
        if within(real, top):
            return f"symlink to {real}, inside the dataset: walked under its own name, not twice (or a loop)"
        if within(top, real):
            return f"symlink to {real}, which contains the dataset (a loop)"
    if real in seen:
        return f"leads to {real}, a folder already walked (symlink loop or duplicate link)"
    return ""


def index_files(files: Iterable[Path], key: str = "name") -> dict[str, Path]:
    """``file name`` (or ``stem``) -> path; the first of duplicates wins (files come sorted)."""
    out: dict[str, Path] = {}
    for f in files:
        out.setdefault(f.name if key == "name" else f.stem, f)
    return out


def normalize_split(value: object, where: str = "") -> str:
    """Map split spellings (``valid``, ``training``...) onto ``train``/``val``/``test``; blank -> ``""``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip().lower()
    if text == "":
        return ""
    if text not in SPLIT_ALIASES:
        raise ValueError(
            f"unknown split value {value!r}{' in ' + where if where else ''}; "
            f"expected one of {sorted(SPLIT_ALIASES)} or blank"
        )
    return SPLIT_ALIASES[text]


def as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """Options given on the command line arrive as ``"a,b,c"``; in Python as lists."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def one_hot(classes: Sequence[str | None], names: Sequence[str]) -> np.ndarray:
    """Rows of 0/1 over ``names``; a ``None`` class gives a row of NaN (unknown)."""
    pos = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(classes), len(names)), dtype=np.float32)
    for i, c in enumerate(classes):
        if c is None:
            out[i] = np.nan
        else:
            out[i, pos[c]] = 1.0
    return out


def make_frame(
    image_id: Sequence,
    path: Sequence,
    patient_id: Sequence,
    view: Sequence | str = "",
    split: Sequence | str = "",
    **meta: Sequence,
) -> pd.DataFrame:
    """The contract's frame: the five required columns first, metadata after."""
    n = len(image_id)
    data = {
        "image_id": pd.Series(image_id, dtype=object).astype(str).to_numpy(),
        "path": pd.Series(path, dtype=object).astype(str).to_numpy(),
        "patient_id": pd.Series(patient_id, dtype=object).astype(str).to_numpy(),
        "view": [view] * n if isinstance(view, str) else list(view),
        "split": [split] * n if isinstance(split, str) else list(split),
    }
    for k, v in meta.items():
        data[k] = list(v)
    return pd.DataFrame(data)


def boxes_frame(image_id: Sequence, label: Sequence, x, y, w, h) -> pd.DataFrame:
    """Boxes side table (fractions of width/height, top-left origin)."""
    return pd.DataFrame(
        {
            "image_id": pd.Series(image_id, dtype=object).astype(str).to_numpy(),
            "label": pd.Series(label, dtype=object).astype(str).to_numpy(),
            "x": np.asarray(x, dtype=np.float64),
            "y": np.asarray(y, dtype=np.float64),
            "w": np.asarray(w, dtype=np.float64),
            "h": np.asarray(h, dtype=np.float64),
        }
    )


#: DICOM header attributes a reader carries into the frame, by frame column.
HEADER_TAGS = {"patient_id": "PatientID", "view": "ViewPosition", "sex": "PatientSex", "age": "PatientAge"}


def dicom_headers(paths: Sequence[Path | str]) -> dict[str, list[str]]:
    """``{frame column: [text per file]}`` for :data:`HEADER_TAGS`, pixels not read.

    A header that cannot be read gives blanks for that file (logged): one broken file must not
    stop reading a table; the caller falls back (patient id = image id, demographics missing).
    Values are the header's text (``PatientAge`` as ``"045Y"``); :mod:`chestxai.data.demographics`
    normalises them."""
    import pydicom  # lazy: only when DICOMs are present

    out: dict[str, list[str]] = {k: [] for k in HEADER_TAGS}
    for p in paths:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=list(HEADER_TAGS.values()))
            values = {k: str(ds.get(tag, "") or "") for k, tag in HEADER_TAGS.items()}
        except Exception as exc:  # a broken header must not stop reading the table
            log.warning(
                "cannot read DICOM header of %s (%s); its patient id and demographics are missing", p, exc
            )
            values = dict.fromkeys(HEADER_TAGS, "")
        for k, v in values.items():
            out[k].append(v)
    return out

"""The CSV tables of a run directory: ``splits.csv``, ``history.csv`` and ``cams/index.csv``.

Each has one writer and one reader here, which check the columns, so a stage never parses a
hand-rolled copy of the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from chestxai.atomic import write_text
from chestxai.rundir.layout import RunDir

SPLIT_COLUMNS = ("image_id", "row", "split")
CAM_INDEX_COLUMNS = ("image_id", "label", "method", "split", "overlay")


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    write_text(path, frame.to_csv(index=False))
    return path


def _require(path: Path, frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; {what} needs {', '.join(columns)}")


# --- splits.csv ------------------------------------------------------------------------------
def write_splits(run: RunDir, frame: pd.DataFrame) -> Path:
    """``image_id, row, split`` per cache row a run uses (the exact split training used)."""
    _require(run.splits, frame, SPLIT_COLUMNS, "splits.csv")
    return _write_csv(run.splits, frame[list(SPLIT_COLUMNS)])


def read_splits(run: RunDir) -> pd.DataFrame | None:
    """The run's ``splits.csv`` (``image_id`` and ``split`` as text, ``row`` as int), or None."""
    if not run.splits.exists():
        return None
    frame = pd.read_csv(run.splits, dtype={"image_id": str, "split": str}, keep_default_na=False)
    _require(run.splits, frame, SPLIT_COLUMNS, "splits.csv")
    frame["row"] = pd.to_numeric(frame["row"], errors="raise").astype(int)
    return frame


# --- history.csv -----------------------------------------------------------------------------
def write_history(run: RunDir, rows: list[dict]) -> Path:
    return _write_csv(run.history, pd.DataFrame(rows))


def read_history(run: RunDir) -> pd.DataFrame | None:
    if not run.history.exists():
        return None
    return pd.read_csv(run.history)


# --- cams/index.csv --------------------------------------------------------------------------
def read_cam_index(run: RunDir) -> pd.DataFrame | None:
    """``cams/index.csv``; files written before per-split explanations get ``split`` = ''."""
    path = run.cams_index
    if not path.exists():
        return None
    index = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "split" not in index.columns:
        index["split"] = ""
    _require(path, index, CAM_INDEX_COLUMNS, "an explanation index")
    return index[list(CAM_INDEX_COLUMNS)]


def update_cam_index(run: RunDir, rows: pd.DataFrame, methods: Sequence[str], split: str) -> Path:
    """Replace the rows of ``methods`` for ``split`` in ``cams/index.csv`` (others kept)."""
    old = read_cam_index(run)
    rows = rows.assign(split=split) if "split" not in rows.columns else rows
    if old is None:
        old = pd.DataFrame(columns=list(CAM_INDEX_COLUMNS))
    keep = ~(old["method"].isin(list(methods)) & (old["split"] == split))
    merged = pd.concat([old[keep], rows[list(CAM_INDEX_COLUMNS)]], ignore_index=True)
    return _write_csv(run.cams_index, merged)

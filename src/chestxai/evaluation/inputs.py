"""What ``evaluate`` needs from a run directory: the model, the cache it is scored on, and the
exact split that training used, with errors that say which file or flag to fix."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chestxai.data.cache import PreparedCache
from chestxai.rundir import RunDir

log = logging.getLogger(__name__)


@dataclass
class RunInputs:
    run: RunDir
    ckpt: dict[str, Any]
    cache: PreparedCache
    own_cache: bool  # the cache the run was trained on (not a --data override)
    split_rows: dict[str, np.ndarray]  # split name -> row positions in the cache
    splits_from: str  # where the split came from, for metrics.json and logs


def resolve_cache_path(ckpt: dict, run: RunDir, data: str | Path | None) -> tuple[Path, bool]:
    """The cache to evaluate on: ``data`` if given, else the run's ``config.data.cache_dir``."""
    trained_on = (ckpt.get("config") or {}).get("data", {}).get("cache_dir")
    if data is not None:
        data = Path(data)
        same = trained_on is not None and Path(trained_on).resolve() == data.resolve()
        return data, same
    if not trained_on:
        raise ValueError(
            f"{run.checkpoint} does not record its cache (config.data.cache_dir); pass --data CACHE"
        )
    return Path(trained_on), True


def check_compatible(cache: PreparedCache, ckpt: dict, run: RunDir) -> None:
    """The cache must carry the model's labels, in the same order, for the same task."""
    model_labels = list(ckpt["label_names"])
    if cache.label_names != model_labels:
        raise ValueError(
            f"label names differ: cache {cache.path} has {cache.label_names} but the model in "
            f"{run.checkpoint} predicts {model_labels}; pass a --data cache prepared with the model's labels"
        )
    task = ckpt.get("model", {}).get("task")
    if task and task != cache.task:
        raise ValueError(
            f"cache {cache.path} is a {cache.task} task but the model in {run.checkpoint} is {task}"
        )


def _splits_from_run(run: RunDir, cache: PreparedCache) -> dict[str, np.ndarray]:
    table = pd.read_csv(run.splits, dtype={"image_id": str, "split": str}, keep_default_na=False)
    missing = {"image_id", "row", "split"} - set(table.columns)
    if missing:
        raise ValueError(f"{run.splits} lacks columns {sorted(missing)}; expected image_id, row, split")
    rows = table["row"].to_numpy(int)
    ids = cache.frame["image_id"].to_numpy(str)
    if len(rows) and (
        rows.min() < 0 or rows.max() >= len(ids) or (ids[rows] != table["image_id"].to_numpy(str)).any()
    ):
        raise ValueError(
            f"{run.splits} does not match cache {cache.path} (row / image_id mismatch): was the cache "
            f"re-prepared? Pass the cache the run was trained on with --data, or delete {run.splits} to "
            f"use the cache's own split column"
        )
    return {s: rows[table["split"].to_numpy(str) == s] for s in table["split"].unique()}


def split_rows(
    run: RunDir, cache: PreparedCache, own_cache: bool, split: str
) -> tuple[dict[str, np.ndarray], str]:
    """Rows per split: the run's ``splits.csv`` (own cache), else the cache's split column, else
    (a cache without splits, e.g. an external test set) every image as ``split``."""
    if own_cache and run.splits.exists():
        return _splits_from_run(run, cache), str(run.splits)
    if cache.has_splits():
        col = cache.frame["split"].astype(str).to_numpy()
        return {
            s: np.flatnonzero(col == s) for s in np.unique(col) if s
        }, f"{cache.path}/index.csv split column"
    log.info("cache %s defines no split: evaluating all %d images as %r", cache.path, len(cache), split)
    return {split: np.arange(len(cache))}, f"all images of {cache.path} (no split column)"


def load_inputs(run: RunDir, ckpt: dict[str, Any], data: str | Path | None, split: str) -> RunInputs:
    """Open the cache for a run's checkpoint (already read), check it fits, and find the splits."""
    cache_path, own = resolve_cache_path(ckpt, run, data)
    try:
        cache = PreparedCache(cache_path)
    except FileNotFoundError as exc:
        flag = "--data" if data is not None else f"config.data.cache_dir of {run.checkpoint} (or pass --data)"
        raise FileNotFoundError(f"{exc} [cache from {flag}]") from exc
    check_compatible(cache, ckpt, run)
    rows, source = split_rows(run, cache, own, split)
    if len(rows.get(split, ())) == 0:
        available = sorted(s for s, r in rows.items() if len(r))
        raise ValueError(f"no images in split {split!r} ({source}); choose --split from {available}")
    return RunInputs(run, ckpt, cache, own, rows, source)

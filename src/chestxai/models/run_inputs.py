"""Which cache a run is scored or explained on, and which of its rows form each split: resolved
once here for ``evaluate``, ``explain``, ``uncertainty`` and ``report`` alike, with the same checks
(:meth:`chestxai.models.trained_run.TrainedRun.inputs`). It lives in ``models`` beside the run
object that calls it, so that opening a run never reaches up into ``evaluation``.

The checks are the point: a cache re-prepared after training (same folder, other images or
another order) must not be read through the run's ``splits.csv``, or test images silently become
training images. Every ``splits.csv`` row is checked against the cache's ``image_id`` at that row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.cache import INDEX, PreparedCache
from chestxai.rundir import RunDir
from chestxai.rundir.tables import read_splits

log = logging.getLogger(__name__)

#: the pseudo split that selects every image of the cache
ALL = "all"


@dataclass(frozen=True)
class ModelFacts:
    """What the resolution needs to know of the model: :attr:`TrainedRun.facts
    <chestxai.models.trained_run.TrainedRun.facts>`, or a run's ``metrics.json`` when the report
    has no checkpoint to open."""

    label_names: list[str]
    task: str | None
    cache_dir: str | None  # the cache it was trained on
    source: str  # the file these facts come from, for messages


@dataclass
class RunInputs:
    run: RunDir
    cache: PreparedCache
    own_cache: bool  # the cache the run was trained on (not a --data override)
    split_rows: dict[str, np.ndarray]  # split name -> row positions in the cache
    splits_from: str  # where the split came from, for metrics.json and logs

    def rows(self, split: str) -> np.ndarray:
        """Rows of ``split`` (``all``: every image); an error listing the splits when it has none."""
        if split == ALL:
            return np.arange(len(self.cache))
        rows = self.split_rows.get(split, np.zeros(0, np.int64))
        if len(rows) == 0:
            available = sorted(s for s, r in self.split_rows.items() if len(r))
            raise ValueError(
                f"no images in split {split!r} ({self.splits_from}); available splits: {available or 'none'}. "
                f"Choose --split from them (or 'all')"
            )
        return rows

    def optional_rows(self, split: str) -> np.ndarray:
        return self.split_rows.get(split, np.zeros(0, np.int64))

    def split_per_row(self) -> pd.Series:
        """The split name of every cache row ('' for rows the run does not use)."""
        out = np.full(len(self.cache), "", dtype=object)
        for name, rows in self.split_rows.items():
            out[rows] = name
        return pd.Series(out)


def resolve_cache_path(facts: ModelFacts, data: str | Path | None) -> tuple[Path, bool]:
    """The cache to use: ``data`` if given, else the one the model was trained on."""
    trained_on = facts.cache_dir
    if data is not None:
        data = Path(data)
        same = trained_on is not None and Path(trained_on).resolve() == data.resolve()
        return data, same
    if not trained_on:
        raise ValueError(
            f"{facts.source} does not record its cache (config.data.cache_dir); pass --data CACHE "
            f"(or explain files with --images FILES)"
        )
    return Path(trained_on), True


def check_compatible(cache: PreparedCache, facts: ModelFacts) -> PreparedCache:
    """The cache must carry the model's labels for the same task; returned seen through exactly the
    model's label columns (a multi-label run trained on some findings, ``data.labels``, is scored
    on those)."""
    subset = cache.task == "multilabel" and set(facts.label_names) <= set(cache.label_names)
    if subset and cache.label_names != facts.label_names:
        cache = cache.with_labels(facts.label_names)
    if cache.label_names != facts.label_names:
        raise ValueError(
            f"label names differ: cache {cache.path} has {cache.label_names} but the model in "
            f"{facts.source} predicts {facts.label_names}; pass a --data cache prepared with the model's labels"
        )
    if facts.task and facts.task != cache.task:
        raise ValueError(
            f"cache {cache.path} is a {cache.task} task but the model in {facts.source} is {facts.task}"
        )
    return cache


def _splits_from_run(run: RunDir, table: pd.DataFrame, cache: PreparedCache) -> dict[str, np.ndarray]:
    rows = table["row"].to_numpy(np.int64)
    ids = cache.frame["image_id"].to_numpy(str)
    if len(rows) and (
        rows.min() < 0 or rows.max() >= len(ids) or (ids[rows] != table["image_id"].to_numpy(str)).any()
    ):
        raise ValueError(
            f"{run.splits} does not match cache {cache.path} (row / image_id mismatch): was the cache "
            f"re-prepared? Pass the cache the run was trained on with --data, or delete {run.splits} to "
            f"use the cache's own split column"
        )
    split = table["split"].to_numpy(str)
    return {str(s): np.sort(rows[split == s]) for s in pd.unique(split)}


def split_rows(run: RunDir, cache: PreparedCache, own_cache: bool) -> tuple[dict[str, np.ndarray], str]:
    """Rows per split: the run's ``splits.csv`` (own cache), else the cache's split column, else
    (a cache without splits, e.g. an external test set) every image as ``test``."""
    table = read_splits(run) if own_cache else None
    if table is not None:
        return _splits_from_run(run, table, cache), str(run.splits)
    if cache.has_splits():
        col = cache.frame["split"].astype(str).to_numpy()
        return {
            str(s): np.flatnonzero(col == s) for s in np.unique(col) if s
        }, f"{cache.path / INDEX} split column"
    log.info("cache %s defines no split: all %d images count as 'test'", cache.path, len(cache))
    return {"test": np.arange(len(cache))}, f"all images of {cache.path} (no split column)"


def open_cache(facts: ModelFacts, data: str | Path | None = None) -> tuple[PreparedCache, bool]:
    """The prepared cache (``data`` or the training cache) and whether it is the training cache."""
    cache_path, own = resolve_cache_path(facts, data)
    if not cache_path.exists():
        where = "--data" if data is not None else f"config.data.cache_dir of {facts.source}"
        raise FileNotFoundError(
            f"the cache {cache_path} ({where}) does not exist; re-create it with `chestxai prepare` (same "
            f"options), pass --data CACHE, or explain files with --images FILES"
        )
    try:
        cache = PreparedCache(cache_path)
    except FileNotFoundError as exc:
        where = "--data" if data is not None else f"config.data.cache_dir of {facts.source} (or pass --data)"
        raise FileNotFoundError(f"{exc} [cache from {where}]") from exc
    return check_compatible(cache, facts), own


def resolve_inputs(run: RunDir, facts: ModelFacts, data: str | Path | None = None) -> RunInputs:
    """Open and check the cache for a run's model and find its splits (the one way to do so)."""
    cache, own = open_cache(facts, data)
    rows, source = split_rows(run, cache, own)
    return RunInputs(run, cache, own, rows, source)

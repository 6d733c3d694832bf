"""From a data config to what the loop needs: the prepared cache, label columns, splits, stats.

Everything a task mismatch can break is checked here, before a model is built, so that a bad
recipe fails in seconds with a message instead of after an epoch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.config import DataConfig
from chestxai.data.cache import PreparedCache
from chestxai.data.splits import balanced_subset, splits_from_cache, stratify_key
from chestxai.paths import cache_root, downloads_dir

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    cache: PreparedCache
    label_names: list[str]
    labels: np.ndarray  # float32 N x L (cache rows, selected columns)
    task: str
    splits: dict[str, np.ndarray]  # split name -> cache rows
    mean: float
    std: float


def dataset_root(cfg: DataConfig) -> Path:
    if cfg.root:
        return Path(cfg.root).expanduser()
    if cfg.source == "medmnist":
        return downloads_dir("medmnist")
    raise ValueError(
        f"data.root is empty: set it to the folder holding the {cfg.source!r} dataset (--root PATH)"
    )


def caches_folder(cfg: DataConfig) -> Path:
    """Where training looks for (and otherwise prepares) the cache of ``cfg``'s inputs: ``data.cache``
    (``--cache``, e.g. the ``--out`` of ``chestxai prepare``), else ``$CHESTXAI_CACHE/prepared``."""
    return Path(cfg.cache).expanduser() if cfg.cache else cache_root() / "prepared"


def cache_plan(cfg: DataConfig) -> str:
    """One line for the screen, before anything is read: which cache training will use, or where it
    looks for one (a ``prepare --out cache/`` is reused only when train is pointed at ``cache/``)."""
    if cfg.cache_dir and Path(cfg.cache_dir, "meta.json").exists():
        return f"data: the prepared cache {cfg.cache_dir} (data.cache_dir)"
    where = "data.cache / --cache" if cfg.cache else "default; --cache DIR for a `chestxai prepare --out DIR`"
    return (
        f"data: looking for a prepared cache of {cfg.source} at {cfg.size} px under {caches_folder(cfg)} "
        f"({where}); reused when its inputs are the same, else prepared there"
    )


def ensure_cache(cfg: DataConfig, progress: bool = True) -> Path:
    """The prepared cache for this data config (prepared now if missing, reused otherwise)."""
    if cfg.cache_dir and Path(cfg.cache_dir, "meta.json").exists():
        return Path(cfg.cache_dir)
    from chestxai.data.prepare import prepare

    out = caches_folder(cfg)
    return prepare(
        cfg.source,
        dataset_root(cfg),
        size=cfg.size,
        out=out,
        workers=cfg.prepare_workers or None,
        options=dict(cfg.options),
        progress=progress,
    )


def select_labels(cache: PreparedCache, cfg: DataConfig) -> tuple[list[str], np.ndarray, str]:
    names = cache.label_names
    task = cache.task
    if cfg.task and cfg.task != task:
        raise ValueError(
            f"the recipe asks for a {cfg.task} task but the cache {cache.path} holds a {task} dataset "
            f"(labels {names}); set data.task: {task} (or leave it empty), or prepare a cache for {cfg.task}"
        )
    if not cfg.labels:
        return names, np.arange(len(names)), task
    unknown = [x for x in cfg.labels if x not in names]
    if unknown:
        raise ValueError(f"data.labels {unknown} are not in the cache {cache.path}; its labels are {names}")
    if task == "multiclass":
        raise ValueError(
            "data.labels selects findings of a multi-label dataset; a multi-class task keeps all classes"
        )
    cols = np.array([names.index(x) for x in cfg.labels])
    if task == "binary" and len(cols) != 1:
        raise ValueError("a binary dataset has one label")
    return list(cfg.labels), cols, task


def image_stats(
    images: np.ndarray, rows: np.ndarray, max_images: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Mean and std of the training images in [0, 1] (normalisation stored in the checkpoint)."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(rows, size=min(max_images, len(rows)), replace=False))
    x = np.asarray(images[pick], dtype=np.float32) / 255.0
    return float(x.mean()), float(max(x.std(), 1e-3))


def setup_data(cfg: DataConfig, seed: int, progress: bool = True) -> TrainingData:
    cache = PreparedCache(ensure_cache(cfg, progress))
    names, cols, task = select_labels(cache, cfg)
    labels = cache.labels[:, cols]
    splits = splits_from_cache(
        cache, val=cfg.val_fraction, test=cfg.test_fraction, seed=seed,
        per_class=cfg.per_class, labels=labels, label_names=names,
    )  # fmt: skip
    for name in ("train", "val"):
        if len(splits[name]) == 0:
            raise ValueError(
                f"the {name} split of {cache.path} is empty; raise data.val_fraction or give the dataset more images"
            )
    if cfg.balance == "undersample":
        if task == "multilabel":
            raise ValueError("data.balance=undersample needs a binary or multi-class task")
        classes = stratify_key(labels, task)
        splits["train"] = balanced_subset(classes, splits["train"], seed=seed)
    mean, std = image_stats(cache.images, splits["train"], seed=seed)
    return TrainingData(cache, names, labels, task, splits, mean, std)


def record_cache(cfg: DataConfig, cache: PreparedCache, note: bool = True) -> None:
    """Write into ``cfg`` the cache this run trains on and the side of its rows: the run's one
    image size (``data.size`` of the saved config and of checkpoint.pt's config), to which
    ``predict``, the service and ONNX export decode new images before the model's own resize.

    An existing ``data.cache_dir`` whose rows have another size than ``data.size`` is trained at
    its own size (its rows are what the model sees); recording the size asked for instead would
    make every later stage resize uploads twice, so the size is corrected here, with a note
    (``note``: this process prints it, rank 0 of a distributed run).
    """
    cfg.cache_dir = str(cache.path.resolve())
    if cache.size != cfg.size:
        if note:
            log.warning(
                "data.cache_dir %s holds %d px images; training at %d px, not the %d px asked (data.size). "
                "To train at %d px, point data.cache_dir at a %d px cache, or leave it empty to prepare one",
                cache.path, cache.size, cache.size, cfg.size, cfg.size, cfg.size,
            )  # fmt: skip
        cfg.size = cache.size


def cache_row_size(cache_dir: str) -> int | None:
    """The row size of the finished cache at ``cache_dir`` (None when there is none): the
    ``data.size`` a run that uses it records (:func:`record_cache`), for callers that compare a
    saved run config with the config they would train."""
    try:
        return PreparedCache(cache_dir).size if cache_dir else None
    except (FileNotFoundError, ValueError):  # not prepared (yet): training prepares it at data.size
        return None


def splits_frame(data: TrainingData) -> pd.DataFrame:
    """image_id, row, split for every row used (what RUN/splits.csv records)."""
    parts = []
    for name, rows in data.splits.items():
        parts.append(
            pd.DataFrame(
                {"image_id": data.cache.frame["image_id"].to_numpy()[rows], "row": rows, "split": name}
            )
        )
    return pd.concat(parts, ignore_index=True)

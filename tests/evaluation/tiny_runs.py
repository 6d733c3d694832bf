"""Build tiny run directories (cache + untrained checkpoint + splits + history) for evaluation and
report tests. No training: these tests check formats and bookkeeping, not accuracy.

Imported by ``tests/evaluation`` and (by file path) ``tests/report``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, save_atomic


def _root_conftest():
    """``tests/conftest.py`` (for ``write_tiny_cache``), loaded by path: ``import conftest`` is
    ambiguous once several test folders have one."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    mod = sys.modules.get("conftest")
    if mod is not None and Path(getattr(mod, "__file__", "")).resolve() == path:
        return mod
    spec = importlib.util.spec_from_file_location("_chestxai_root_conftest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


write_tiny_cache = _root_conftest().write_tiny_cache

NIH14 = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]  # fmt: skip
SPLIT_CYCLE = ("train", "val", "test", "test")


def tiny_labels(task: str, n: int, n_labels: int, rng: np.random.Generator) -> np.ndarray:
    if task == "binary":
        return (rng.random((n, 1)) < 0.4).astype(np.float32)
    if task == "multiclass":
        return np.eye(n_labels, dtype=np.float32)[
            (np.arange(n) // len(SPLIT_CYCLE)) % n_labels
        ]  # every class in every split
    y = (rng.random((n, n_labels)) < 0.3).astype(np.float32)
    y[rng.random((n, n_labels)) < 0.1] = np.nan  # unknown findings are masked per finding
    return y


def label_names_for(task: str, n_labels: int) -> list[str]:
    if task == "binary":
        return ["Pneumonia"]
    if task == "multilabel" and n_labels == len(NIH14):
        return list(NIH14)
    return [f"class{i}" for i in range(n_labels)]


def write_tiny_run(
    root: Path,
    task: str = "binary",
    n_labels: int = 1,
    n: int = 48,
    size: int = 32,
    seed: int = 0,
    patient_id: list[str] | None = None,
    label_names: list[str] | None = None,
    labels: np.ndarray | None = None,
    splits_csv: bool = True,
    history: bool = True,
) -> tuple[Path, Path]:
    """Returns ``(run_dir, cache_dir)`` under ``root``: a cache split train/val/test/test by row,
    an untrained resnet18 checkpoint pointing at it, ``splits.csv`` and ``history.csv``."""
    rng = np.random.default_rng(seed)
    names = label_names or label_names_for(task, n_labels)
    y = tiny_labels(task, n, len(names), rng) if labels is None else labels
    images = rng.integers(0, 255, size=(n, size, size), dtype=np.uint8)
    # brighten positives of the first label so that even an untrained net scores a little signal
    images[np.nan_to_num(y[:, 0]) == 1] //= 2
    split = [SPLIT_CYCLE[i % len(SPLIT_CYCLE)] for i in range(n)]
    cache = write_tiny_cache(root / "cache", images, y, names, task, split=split, patient_id=patient_id)
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    model = create_model("resnet18", num_labels=len(names), task=task, input_size=size)
    preprocess = {"size": size, "mean": 0.5, "std": 0.25}
    ckpt = make_checkpoint(model, names, preprocess, config={"data": {"cache_dir": str(cache)}})
    save_atomic(ckpt, run / "checkpoint.pt")
    if splits_csv:
        ids = [f"img{i:05d}" for i in range(n)]
        pd.DataFrame({"image_id": ids, "row": range(n), "split": split}).to_csv(
            run / "splits.csv", index=False
        )
    if history:
        pd.DataFrame(
            {
                "epoch": [1, 2, 3],
                "train_loss": [0.7, 0.6, 0.5],
                "val_loss": [0.72, 0.65, 0.6],
                "val_auc": [0.6, 0.7, 0.75],
                "epoch_time_s": [1.5, 1.4, 1.6],
                "train_images_per_s": [100.0, 110.0, 105.0],
            }
        ).to_csv(run / "history.csv", index=False)
    return run, cache

"""MedMNIST ``.npz`` files (PneumoniaMNIST, ChestMNIST, ...) with their official splits.

Layout as distributed::

    <root>/<flag>[_<size>].npz     train/val/test _images and _labels (or pass the .npz as root)

``root`` is a folder holding ``<flag>.npz`` or the ``.npz`` file itself. When the file is missing
it is downloaded from the official Zenodo record into ``root``; offline, the error names the file
and where to put it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.table import ImageTable
from chestxai.labels import NIH14

log = logging.getLogger(__name__)

# Official MedMNIST v2 record (the URLs the medmnist package itself uses).
ZENODO = "https://zenodo.org/records/10519652/files/{name}?download=1"
# label names and task per flag; extend as more MedMNIST chest sets are needed
DATASETS = {
    "pneumoniamnist": (["Pneumonia"], "binary"),
    "chestmnist": (
        NIH14,
        "multilabel",
    ),
}
SPLITS = ("train", "val", "test")


def npz_path(root: Path, flag: str, size: int = 28) -> Path:
    """Where the file for ``flag`` lives under ``root`` (``root`` may be the file itself)."""
    if root.suffix == ".npz":
        return root
    name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
    return root / name


def download(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically (temp file + rename), with a clear offline error."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as resp,
            tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp,
        ):
            shutil.copyfileobj(resp, tmp)
        Path(tmp.name).replace(dest)
    except OSError as exc:
        raise FileNotFoundError(
            f"{dest.name} is not in {dest.parent} and could not be downloaded from {url} ({exc}). "
            f"Download it on a machine with internet access and put it at {dest}, or point "
            f"--root / $CHESTXAI_CACHE at a folder that holds it."
        ) from exc
    return dest


@READERS.register("medmnist")
def read(
    root: Path, flag: str = "pneumoniamnist", size: int = 28, download_missing: bool = True
) -> ImageTable:
    """Read a MedMNIST 2-D chest set; the official train/val/test split is kept."""
    if flag not in DATASETS:
        raise ValueError(f"unknown MedMNIST flag {flag!r}; chest sets supported: {sorted(DATASETS)}")
    path = npz_path(Path(root), flag, size)
    if not path.exists():
        if not download_missing:
            raise FileNotFoundError(f"{path} not found; download {ZENODO.format(name=path.name)} there")
        download(ZENODO.format(name=path.name), path)
    label_names, task = DATASETS[flag]
    with np.load(path) as npz:
        missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in npz.files]
        if missing:
            raise ValueError(f"{path} is not a MedMNIST file: keys {missing} are missing (found {npz.files})")
        images = np.concatenate([npz[f"{s}_images"] for s in SPLITS])
        labels = np.concatenate([npz[f"{s}_labels"] for s in SPLITS]).astype(np.float32)
        split = np.concatenate([[s] * len(npz[f"{s}_labels"]) for s in SPLITS])
    if images.ndim == 4:  # RGB MedMNIST sets: keep luminance only (chest sets are grayscale anyway)
        images = (images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    n = len(images)
    ids = [f"{s}_{i:05d}" for s, i in zip(split, _index_within_split(split), strict=True)]
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "path": [""] * n,
            # MedMNIST publishes no patient ids; each image is its own group (stated in notes)
            "patient_id": ids,
            "view": [""] * n,
            "split": split,
        }
    )
    return ImageTable(
        source="medmnist",
        frame=frame,
        label_names=label_names,
        labels=labels.reshape(n, -1),
        task=task,
        arrays=images.astype(np.uint8),
        root=path.parent,
        notes=[f"{path.name}: official MedMNIST split; no patient ids published (one group per image)"],
    )


def _index_within_split(split: np.ndarray) -> list[int]:
    counters: dict[str, int] = {}
    out = []
    for s in split:
        out.append(counters.get(s, 0))
        counters[s] = out[-1] + 1
    return out

"""Where things live by default: the user cache and the shared real-data folder.

``CHESTXAI_CACHE`` overrides the cache root (prepared caches, downloads);
``CHESTXAI_DOWNLOADS`` overrides where downloadable datasets (MedMNIST .npz) are looked for and
saved (CI points it at the shared PneumoniaMNIST copy, so nothing is downloaded);
``CHESTXAI_DATA`` overrides where the real development data lives (tests and benchmarks).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root for downloads and prepared caches (``$CHESTXAI_CACHE`` or ``~/.cache/chestxai``)."""
    env = os.environ.get("CHESTXAI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "chestxai"


def downloads_dir(dataset: str) -> Path:
    """Folder for a downloadable dataset's files (``$CHESTXAI_DOWNLOADS`` or ``<cache>/<dataset>``)."""
    env = os.environ.get("CHESTXAI_DOWNLOADS")
    return Path(env).expanduser() if env else cache_root() / dataset


def shared_data_root() -> Path:
    """The real development data (``$CHESTXAI_DATA`` or ``../shared/data`` beside the checkout)."""
    env = os.environ.get("CHESTXAI_DATA")
    if env:
        return Path(env).expanduser()
    candidates = [
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]

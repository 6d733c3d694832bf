"""Where things live by default: the user cache and the shared real-data folder.

``CHESTXAI_CACHE`` overrides the cache root (CI points it at a folder holding PneumoniaMNIST);
``CHESTXAI_DATA`` overrides where the real development data lives (tests and benchmarks).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root for downloads and prepared caches (``$CHESTXAI_CACHE`` or ``~/.cache/chestxai``)."""
    env = os.environ.get("CHESTXAI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "chestxai"


def shared_data_root() -> Path:
    """The real development data (``$CHESTXAI_DATA`` or ``../shared/data`` beside the checkout)."""
    env = os.environ.get("CHESTXAI_DATA")
    if env:
        return Path(env).expanduser()
    candidates = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]

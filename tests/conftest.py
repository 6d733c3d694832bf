"""Shared fixtures: the real-data folder (skip when absent) and tiny synthetic caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from chestxai.paths import shared_data_root
from chestxai.testing import blob_dataset, write_tiny_cache  # noqa: F401  (re-exported for tests)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$CHESTXAI_DATA``); tests using it skip with a reason when absent."""
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"real data folder {root} is absent (set CHESTXAI_DATA to run real-data tests)")
    return root


@pytest.fixture
def make_tiny_cache(tmp_path):
    """Factory fixture: ``make_tiny_cache(images, labels, label_names, task, **kw) -> Path``."""

    def make(images, labels, label_names, task, name="cache", **kw):
        return write_tiny_cache(tmp_path / name, images, labels, label_names, task, **kw)

    return make

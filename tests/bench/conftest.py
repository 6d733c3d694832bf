"""Fixtures for the benchmark tests: a folder of background images any reader-facing code can load."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_helpers import write_background_folder

from chestxai.evaluation.cost import torch_threads


@pytest.fixture
def background_folder(tmp_path) -> Path:
    return write_background_folder(tmp_path / "xrays", 48)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread (the shared 2-core machine; also keeps seeded results identical)."""
    with torch_threads(1):
        yield

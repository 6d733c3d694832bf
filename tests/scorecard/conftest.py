"""Scorecard fixtures: a tiny run with boxes on its test and val images, and one without ground truth."""

from __future__ import annotations

import pytest
import torch
from scorecard_helpers import box_table

from chestxai.evaluation.cost import torch_threads
from chestxai.testing import write_tiny_run


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def boxed_run(tmp_path_factory):
    """A tiny binary run (untrained resnet18 at 32 px) whose cache has Pneumonia boxes on test and val."""
    root = tmp_path_factory.mktemp("scorecard")
    with torch.random.fork_rng(devices=[]):
        run, _ = write_tiny_run(root / "a", "binary", 1, n=48, boxes=box_table(48))
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """The same kind of run without any ground truth (the quickstart's situation)."""
    root = tmp_path_factory.mktemp("scorecard-plain")
    run, _ = write_tiny_run(root / "a", "binary", 1, n=48)
    return run

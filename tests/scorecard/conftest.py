"""Scorecard fixtures: a tiny run with boxes on its test and val images, and one without ground truth."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from chestxai.evaluation.cost import torch_threads
from chestxai.testing import SPLIT_CYCLE, write_tiny_run


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def box_table(n: int, splits=("test", "val"), n_images: int = 6) -> pd.DataFrame:
    """A 10 x 8 px box of Pneumonia on the first ``n_images`` images of each split."""
    rows = []
    for split in splits:
        picked = [i for i in range(n) if SPLIT_CYCLE[i % len(SPLIT_CYCLE)] == split][:n_images]
        rows += [
            {"image_id": f"img{i:05d}", "label": "Pneumonia", "x": 4, "y": 6, "w": 10, "h": 8} for i in picked
        ]
    return pd.DataFrame(rows)


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

"""Fixtures for explanation tests: a tiny CNN trained once per session on the blob task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from explain_helpers import blob_dataset, train_tiny

from chestxai.evaluation.cost import torch_threads


@dataclass
class BlobTask:
    model: torch.nn.Module
    images: np.ndarray  # held-out images, uint8 N x S x S
    labels: np.ndarray  # N x 1
    boxes: np.ndarray  # N x 4 (x, y, w, h), NaN for negatives
    preprocess: dict


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread while this folder's modules run (restored after each module, so other
    folders' tests keep torch's default): on the shared 2-core machine two threads spin against
    other processes and run several times slower, and one thread keeps seeded results identical."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def blob_task() -> BlobTask:
    """A tiny CNN trained (seeded, plain torch, 150 steps of 32) to detect the blob at 64 px."""
    with torch_threads(1):
        images, labels, boxes = blob_dataset(400, size=64, seed=0)
        model = train_tiny(images[:300], labels[:300], steps=150, seed=0)
    return BlobTask(model, images[300:], labels[300:], boxes[300:], {"size": 64, "mean": 0.5, "std": 0.25})

"""A tiny trained synthesis run (one CycleGAN step on 32 px images) for generate/evaluate tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chestxai.evaluation.cost import torch_threads
from chestxai.synth.loop import train_synth
from chestxai.synth.settings import SynthSettings
from chestxai.testing import write_tiny_cache, write_tiny_run

SPLIT_CYCLE = ("train", "val", "test", "test")


def tiny_cache(root: Path, n: int = 48, size: int = 32, seed: int = 0) -> Path:
    """``n`` noise images, label Pneumonia on every other one (brighter), split train/val/test/test."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.float32)[:, None]
    images = rng.integers(0, 200, (n, size, size), dtype=np.uint8)
    images[labels[:, 0] == 1] += 50
    split = [SPLIT_CYCLE[(i // 2) % 4] for i in range(n)]
    return write_tiny_cache(root / "cache", images, labels, ["Pneumonia"], "binary", split=split)


def tiny_synth_run(root: Path, **kw) -> Path:
    """A synthesis run not:Pneumonia <-> Pneumonia trained for one step with 4-filter networks."""
    cache = tiny_cache(root)
    settings = SynthSettings(
        cache_dir=str(cache), run_dir=str(root / "synth"), domain_a="not:Pneumonia", domain_b="Pneumonia",
        ngf=4, ndf=4, n_blocks=1, epochs=1, max_steps=1, batch_size=2, threads=1, **kw,
    )  # fmt: skip
    return Path(train_synth(settings, progress=False))


def tiny_classifier(root: Path, size: int = 32) -> Path:
    """An untrained ResNet-18 classifier run for label Pneumonia (what label consistency reads)."""
    run, _ = write_tiny_run(root, task="binary", size=size, n=16)
    return run


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread in these tests (the suite shares two cores; restored afterwards)."""
    with torch_threads(1):
        yield

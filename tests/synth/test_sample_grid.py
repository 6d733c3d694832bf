"""The CycleGAN sample grid names its columns (issue 20 item 10f): real A, fake B, cycled A, ..."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from chestxai.synth.samples import write_sample_grid

NAMES = ["real A", "fake B", "cycled A", "real B", "fake A", "cycled B"]


def test_sample_grid_columns_are_labelled(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 32, 32), dtype=np.uint8)
    gens = {"a2b": torch.nn.Identity(), "b2a": torch.nn.Identity()}
    path = write_sample_grid(tmp_path / "epoch-001.png", gens, images, images, torch.device("cpu"))
    grid = Image.open(path)
    assert grid.text["Columns"].split(" | ") == NAMES and "row i" in grid.text["Rows"]
    pixels = np.asarray(grid)
    tile = (pixels.shape[1] + 2) // 6 - 2
    assert tile >= 64  # wide enough for "cycled A" under PIL's default font
    header = pixels.shape[0] - 2 * (tile + 2) + 2
    assert header > 0  # a band above the tiles, white but for the names
    for c in range(6):
        band = pixels[:header, c * (tile + 2) : c * (tile + 2) + tile]
        assert (band < 128).any(), f"column {c + 1} ({NAMES[c]}) has no label"

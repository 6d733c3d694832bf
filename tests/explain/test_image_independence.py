"""The explain stage measures how alike a method's maps of different images are (Arun et al.'s
random-pairs baseline) and warns in words when they hardly change from image to image."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from chestxai.explain.controls import entry_warnings
from chestxai.explain.map_agreement import random_pairs_baseline
from chestxai.explain.store import maps_baseline


def _maps(same: bool, n: int = 12, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    if same:  # one central blob whatever the image, plus a little noise
        yy, xx = np.mgrid[:size, :size]
        blob = np.exp(-((yy - 8) ** 2 + (xx - 8) ** 2) / 8.0)
        return np.clip(blob + 0.01 * rng.random((n, size, size)), 0, 1)
    return rng.random((n, size, size))


def test_image_independent_maps_are_warned_about_in_words():
    entry = {"method": "hirescam", "random_pairs": random_pairs_baseline(_maps(same=True))}
    assert entry["random_pairs"]["spearman"] > 0.8
    said = [w for w in entry_warnings(entry) if "hardly change from image to image" in w]
    assert len(said) == 1 and said[0].startswith("hirescam's maps") and "random pairs" in said[0]


def test_maps_that_differ_get_no_such_warning():
    entry = {"method": "hirescam", "random_pairs": random_pairs_baseline(_maps(same=False))}
    assert entry["random_pairs"]["spearman"] < 0.2
    assert not any("image to image" in w for w in entry_warnings(entry))
    control = {
        "method": "random",
        "is_control": True,
        "random_pairs": random_pairs_baseline(_maps(same=True)),
    }
    assert entry_warnings(control) == []


def test_maps_baseline_takes_one_map_per_image():
    maps = _maps(same=False, n=4)
    result = SimpleNamespace(
        heatmaps=maps,
        scores=pd.DataFrame({"image_id": ["a", "a", "b", "c"], "finding": ["x", "y", "x", "x"]}),
    )
    base = maps_baseline(result)
    assert base["n_maps"] == 3 and base["n_pairs"] == 3  # a, b, c: every pair of different images
    assert base["n_empty_maps"] == 0
    assert base["ssim"] == pytest.approx(random_pairs_baseline(maps[[0, 2, 3]])["ssim"])

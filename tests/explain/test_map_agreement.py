"""The random-pairs baseline and map similarity (Arun et al. 2021), on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.explain.map_agreement import (
    image_independence,
    map_similarity,
    random_pairs,
    random_pairs_baseline,
)
from chestxai.metrics.image_similarity import ssim


def test_random_pairs_are_distinct_pairs_of_different_images_and_seeded():
    pairs = random_pairs(20, 50, seed=3)
    assert pairs.shape == (50, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == 50
    assert (random_pairs(20, 50, seed=3) == pairs).all()
    assert len(random_pairs(4, 50)) == 6  # every pair of 4 images
    assert len(random_pairs(1, 50)) == 0


def test_baseline_is_the_mean_ssim_of_the_pairs_by_definition():
    rng = np.random.default_rng(0)
    maps = rng.random((12, 16, 16))
    base = random_pairs_baseline(maps, 10, seed=1)
    pairs = random_pairs(12, 10, seed=1)
    expected = np.mean([ssim(maps[i], maps[j], 1.0) for i, j in pairs])
    assert base["ssim"] == pytest.approx(expected, abs=1e-12)
    assert base["n_pairs"] == 10


def test_identical_maps_of_every_image_are_image_independent_and_noise_is_not():
    blob = np.zeros((16, 16))
    blob[6:10, 6:10] = 1.0
    same = np.stack([blob + 0.01 * k for k in range(8)]) / 1.1
    base = random_pairs_baseline(same)
    assert base["ssim"] > 0.99 and base["spearman"] == pytest.approx(1.0)
    assert "hardly change" in image_independence(base, "hirescam")
    noise = np.random.default_rng(1).random((8, 16, 16))
    assert image_independence(random_pairs_baseline(noise)) is None


def test_a_constant_trained_map_is_left_out_and_a_constant_other_counts_as_changed():
    a = np.random.default_rng(2).random((3, 12, 12))
    a[0] = 0.5
    b = a.copy()
    b[1] = 0.0
    sim = map_similarity(a, b)
    assert np.isnan(sim["spearman"][0]) and sim["undefined"][0]
    assert sim["spearman"][1] == 0 and sim["constant"][1]
    assert sim["spearman"][2] == pytest.approx(1.0)

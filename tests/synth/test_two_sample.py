"""The classifier two-sample test: exact binomial statistics, and honest on both sides (detects an
obvious difference, stays near chance on two halves of one real domain)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta, binomtest

from chestxai.synth.two_sample import binomial_summary, two_sample_test

from .tiny_synth import one_thread  # noqa: F401 (autouse: one torch thread)


@pytest.mark.parametrize("correct,n", [(60, 100), (50, 100), (0, 12), (12, 12), (131, 200)])
def test_binomial_ci_and_p_value_are_scipys_exact_ones(correct, n):
    r = binomial_summary(correct, n)
    ci = binomtest(correct, n, 0.5).proportion_ci(0.95, method="exact")
    assert r["ci"] == pytest.approx([ci.low, ci.high])
    # Clopper-Pearson from the beta quantiles, independently of scipy's binomtest
    lo = 0.0 if correct == 0 else beta.ppf(0.025, correct, n - correct + 1)
    hi = 1.0 if correct == n else beta.ppf(0.975, correct + 1, n - correct)
    assert r["ci"] == pytest.approx([lo, hi], abs=1e-9)
    assert r["p_value"] == pytest.approx(binomtest(correct, n, 0.5, alternative="greater").pvalue)
    assert r["accuracy"] == correct / n and r["n_test"] == n


def test_binomial_summary_rejects_impossible_counts():
    with pytest.raises(ValueError, match="n_test = 0"):
        binomial_summary(0, 0)
    with pytest.raises(ValueError, match="not between"):
        binomial_summary(5, 4)


def test_obviously_different_images_are_detected():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 255, (80, 32, 32), dtype=np.uint8)
    darker = (rng.integers(0, 255, (80, 32, 32)) // 2).astype(np.uint8)
    r = two_sample_test(real, darker, seed=0, epochs=5)
    assert r["accuracy"] > 0.9 and r["p_value"] < 1e-6
    assert r["n_test"] == 80 and r["n_train"] == 80


def test_one_distribution_gives_chance_accuracy():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (100, 32, 32), dtype=np.uint8)
    b = rng.integers(0, 255, (100, 32, 32), dtype=np.uint8)
    r = two_sample_test(a, b, seed=0, epochs=5)
    assert 0.35 <= r["accuracy"] <= 0.65 and r["p_value"] > 0.01


def test_the_test_is_seeded_and_balanced():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 255, (30, 32, 32), dtype=np.uint8)
    b = rng.integers(0, 200, (50, 32, 32), dtype=np.uint8)
    r1, r2 = two_sample_test(a, b, seed=3, epochs=2), two_sample_test(a, b, seed=3, epochs=2)
    assert r1 == r2
    assert r1["n_per_set"] == 30 and r1["n_test"] == 30  # the larger set is cut to the smaller


def test_bad_inputs_are_clear_errors():
    a = np.zeros((10, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="one size"):
        two_sample_test(a, np.zeros((10, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="at least 4"):
        two_sample_test(a[:3], a[:3])
    with pytest.raises(ValueError, match="uint8"):
        two_sample_test(a.astype(np.float32), a)


@pytest.mark.slow
@pytest.mark.realdata
def test_real_vs_real_is_near_chance(shared_data):
    """Two random halves of PneumoniaMNIST's normal training images: one distribution, so the test
    must not find a difference (the check that the two-sample test itself is honest)."""
    path = shared_data / "pneumoniamnist" / "pneumoniamnist.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with np.load(path) as z:
        images, labels = z["train_images"], z["train_labels"].reshape(-1)
    normal = images[labels == 0]
    order = np.random.default_rng(0).permutation(len(normal))
    half = len(order) // 2
    r = two_sample_test(normal[order[:half]], normal[order[half:]], seed=0, max_per_set=300, epochs=10)
    assert r["n_test"] == 300
    assert 0.42 <= r["accuracy"] <= 0.58, r
    assert r["p_value"] > 0.05, r
    # and the same test separates the two real domains (normal vs pneumonia) clearly
    sick = images[labels == 1]
    r2 = two_sample_test(normal, sick, seed=0, max_per_set=300, epochs=5)
    assert r2["accuracy"] > 0.7 and r2["p_value"] < 1e-6, r2

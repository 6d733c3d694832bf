"""Cycle SSIM is the standard SSIM (Wang et al. 2004): interior windows only (issue 20 item 11).

torchmetrics' SSIM averages over reflect-padded borders too: 0.231 instead of 0.313 at 32 px.
"""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.synth.difference import cycle_ssim


def _pair(seed: int, shape: tuple[int, ...], noise: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise, shape), 0, 255).astype(np.uint8)
    return a, b


def _ssim_by_hand(x: np.ndarray, y: np.ndarray, L: float) -> float:
    """The definition, one 11 x 11 Gaussian window (sigma 1.5) at a time, interior windows only."""
    g = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11].astype(float), y[i : i + 11, j : j + 11].astype(float)
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_window_is_the_11_tap_gaussian_with_sigma_1_5():
    from chestxai.metrics.image_similarity import gaussian_window

    w = gaussian_window()
    assert len(w) == 11 and w.sum() == pytest.approx(1.0) and w[5] == w.max()
    assert w[4] / w[5] == pytest.approx(np.exp(-0.5 / 1.5**2))


def test_cycle_ssim_is_the_mean_over_interior_windows_computed_by_hand():
    a, b = _pair(0, (2, 13, 12))  # 3 x 2 interior windows: padded borders would add 13 x 12 - 6 more
    expected = [_ssim_by_hand(x, y, 255.0) for x, y in zip(a, b, strict=True)]
    assert cycle_ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert cycle_ssim(a, a) == pytest.approx([1.0, 1.0])


def test_cycle_ssim_matches_scikit_image_structural_similarity():
    metrics = pytest.importorskip(
        "skimage.metrics",
        reason="scikit-image is not installed; the hand-computed case above still pins SSIM",
    )
    a, b = _pair(1, (4, 32, 32))
    ours = cycle_ssim(a, b)
    ref = [
        metrics.structural_similarity(
            x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        for x, y in zip(a.astype(np.float64), b.astype(np.float64), strict=True)
    ]
    assert ours == pytest.approx(ref, abs=1e-6)
    from chestxai.metrics.image_similarity import ssim

    x, y = a[0] / 255.0, b[0] / 255.0  # same on [0, 1] images with data range 1
    assert ssim(x, y, 1.0) == pytest.approx(ref[0], abs=1e-6)


def test_ssim_refuses_mismatched_shapes():
    from chestxai.metrics.image_similarity import ssim

    with pytest.raises(ValueError, match="different shapes"):
        ssim(np.zeros((4, 4)), np.zeros((4, 5)), 1.0)

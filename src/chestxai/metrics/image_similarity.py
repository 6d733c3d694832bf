"""SSIM as Wang et al. (2004) define it, in numpy: interior windows only, no padded borders.

Why not torchmetrics' SSIM: since 2024 it reflect-pads the image and averages the SSIM map over
the padded borders too, which at 32 px moved a cycle SSIM from 0.313 (the standard figure) to
0.231 (issue 20 item 11). The standard definition, also that of scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=L)``:

* local means, variances and covariance under an 11 x 11 Gaussian window (sigma 1.5, weights
  summing to 1; scipy's ``truncate=3.5`` gives the same 11 taps), population (not sample) moments;
* ``SSIM(x, y) = (2 mx my + C1)(2 sxy + C2) / ((mx^2 + my^2 + C1)(sx^2 + sy^2 + C2))`` with
  ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``;
* the image's SSIM is the mean of that map over the windows that lie wholly inside the image
  (``(H - 10) x (W - 10)`` of them).

Images smaller than the window (below 11 px) use the largest odd window that fits, with sigma
scaled by ``window / 11`` (scikit-image refuses them).
"""

from __future__ import annotations

import numpy as np

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """1-D Gaussian weights of odd length ``size``, summing to 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable weighted sums over every interior ``k x k`` window of the last two axes."""
    k = len(w)
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=-1) @ w
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=-2) @ w


def ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """Per-image SSIM of two ``N x H x W`` (or ``H x W``) stacks, standard definition (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"SSIM of images of different shapes: {x.shape} and {y.shape}")
    if x.ndim not in (2, 3):
        raise ValueError(f"SSIM takes H x W or N x H x W images, got shape {x.shape}")
    if data_range <= 0:
        raise ValueError(f"SSIM data_range must be > 0, got {data_range}")
    side = min(x.shape[-2:])
    size = min(WINDOW, side if side % 2 else side - 1)
    if size < 1:
        raise ValueError(f"SSIM of an empty image: shape {x.shape}")
    w = gaussian_window(size, SIGMA * size / WINDOW)
    mx, my = _filter_valid(x, w), _filter_valid(y, w)
    vx = _filter_valid(x * x, w) - mx * mx
    vy = _filter_valid(y * y, w) - my * my
    cxy = _filter_valid(x * y, w) - mx * my
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(axis=(-2, -1))

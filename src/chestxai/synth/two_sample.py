"""Classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): can a classifier tell real from synthetic?

Why a classifier and not only FID: FID summarises two feature clouds by their means and
covariances and has no null distribution, so "FID 40" says nothing about whether the difference is
real. A two-sample test does: train a classifier to separate real (label 0) from synthetic
(label 1) images on one half of each set, and count how many of the other half it gets right. If
the two sets come from one distribution, every classifier is right with probability 1/2 on
held-out images, so the number right is Binomial(n_test, 1/2) and an exact one-sided p-value
against chance follows. Accuracy near 0.5 means *this* classifier could not tell the sets apart
(not that they are identical: a weak classifier or few images also give 0.5); near 1.0 means the
synthetic images are easy to spot.

The classifier is a small CNN trained from scratch on the pixels (no pretrained weights, so it
runs offline and knows nothing of ImageNet). Both sets are balanced (the larger one is
subsampled) and each is halved at random, so train and test halves hold as many real as synthetic
images and chance is exactly 0.5. ``real vs real`` (two halves of one domain) must give about 0.5;
``tests/synth/test_two_sample.py`` checks that the test is honest in that sense.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

LEVEL = 0.95


def binomial_summary(correct: int, n: int, level: float = LEVEL) -> dict[str, Any]:
    """Accuracy ``correct / n`` with its exact (Clopper-Pearson) two-sided CI and the one-sided
    p-value of ``accuracy > 0.5`` (scipy's exact binomial test).

    The CI is taken from a *two-sided* test: scipy's ``proportion_ci`` follows the alternative of
    the test it belongs to, and a one-sided test would give ``[lo, 1.0]``.
    """
    from scipy.stats import binomtest

    if n <= 0:
        raise ValueError("the two-sample test needs at least one held-out image (n_test = 0)")
    if not 0 <= correct <= n:
        raise ValueError(f"correct={correct} is not between 0 and n={n}")
    ci = binomtest(int(correct), int(n), 0.5).proportion_ci(confidence_level=level, method="exact")
    p = binomtest(int(correct), int(n), 0.5, alternative="greater").pvalue
    return {
        "accuracy": float(correct) / float(n),
        "ci": [float(ci.low), float(ci.high)],
        "ci_level": level,
        "p_value": float(p),
        "n_test": int(n),
        "n_correct": int(correct),
    }


class SmallCNN(nn.Module):
    """Three strided conv blocks, global average pooling, one logit: enough to spot textures,
    checkerboards and intensity shifts, small enough to train in seconds on a CPU."""

    def __init__(self, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in (width, 2 * width, 4 * width):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def _as_uint8(images: np.ndarray, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"{name}: expected N x H x W images, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(
            f"{name}: expected uint8 images (what the cache and the PNGs hold), got {images.dtype}"
        )
    return images


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 : 2 * (n // 2)]


def two_sample_test(
    real: np.ndarray,
    synthetic: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = 15,
    batch_size: int = 32,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
    max_per_set: int | None = None,
) -> dict[str, Any]:
    """Held-out accuracy of a real-vs-synthetic CNN with its binomial CI and p-value (see module doc).

    ``real``/``synthetic``: uint8 ``N x H x W`` of one size. Both are cut to the smaller count (and
    to ``max_per_set``), halved at random; the CNN trains ``epochs`` on the first halves and is
    scored on the second. Returns :func:`binomial_summary` plus the counts and settings.
    """
    real, synthetic = _as_uint8(real, "real"), _as_uint8(synthetic, "synthetic")
    if real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(
            f"real images are {real.shape[1:]} but synthetic ones {synthetic.shape[1:]}; use one size"
        )
    n = min(len(real), len(synthetic), max_per_set or len(real))
    if n < 4:
        raise ValueError(
            f"the two-sample test needs at least 4 images per set, got {len(real)} real and {len(synthetic)} "
            f"synthetic; raise --n"
        )
    rng = np.random.default_rng(seed)
    real = real[rng.choice(len(real), n, replace=False)]
    synthetic = synthetic[rng.choice(len(synthetic), n, replace=False)]
    r_train, r_test = _halves(n, rng)
    s_train, s_test = _halves(n, rng)
    x_train = np.concatenate([real[r_train], synthetic[s_train]])
    y_train = np.concatenate([np.zeros(len(r_train)), np.ones(len(s_train))]).astype(np.float32)
    x_test = np.concatenate([real[r_test], synthetic[s_test]])
    y_test = np.concatenate([np.zeros(len(r_test)), np.ones(len(s_test))]).astype(np.float32)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).float().div_(127.5).sub_(1.0).unsqueeze(1)

    with torch.random.fork_rng(devices=[]):  # seeded weights and batches; caller's RNG untouched
        torch.manual_seed(seed)
        model = SmallCNN().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.BCEWithLogitsLoss()
        xt, yt = tensor(x_train), torch.from_numpy(y_train)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(xt))
            for start in range(0, len(xt), batch_size):
                idx = order[start : start + batch_size]
                if len(idx) < 2:  # BatchNorm needs two images
                    continue
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt[idx].to(device)), yt[idx].to(device))
                loss.backward()
                opt.step()
        model.eval()
        with torch.inference_mode():
            xs = tensor(x_test)
            logits = torch.cat([model(xs[i : i + 256].to(device)).cpu() for i in range(0, len(xs), 256)])
    pred = (logits.numpy() > 0).astype(np.float32)
    correct = int((pred == y_test).sum())
    out = binomial_summary(correct, len(y_test))
    out.update(
        {
            "n_per_set": int(n),
            "n_train": int(len(y_train)),
            "classifier": f"SmallCNN (3 conv blocks, from scratch), {epochs} epochs, Adam lr {lr:g}",
            "seed": int(seed),
            "method": "classifier two-sample test (Lopez-Paz & Oquab 2017); exact binomial CI, one-sided p vs 0.5",
        }
    )
    return out

"""Spurious cues for the shortcut experiment: a laterality-marker-like tag or a border band.

Why: chest X-ray classifiers are known to read the hospital's markers and borders instead of the
lungs (Zech et al., PLoS Med 2018; DeGrave et al., Nat Mach Intell 2021). Putting such a cue into
one class only, training on it, and testing without it shows two things a user must see: how much
of the AUC was the cue (the drop), and whether the heatmaps would have told them (the share of
heatmap energy on the cue vs on the lesion).

Cues (pure numpy on float images in ``[0, 1]``; each returns the cue's uint8 0/1 mask too):

* ``tag``: a white rectangle carrying a dark letter "R" (a 5 x 7 glyph), about 11% of the image
  side tall, in the top-right corner region (position jittered by a few pixels), as radiographers'
  lead markers look;
* ``band``: a bright band along the left border, 5% of the side wide (a collimator edge / a
  scanner's frame).
"""

from __future__ import annotations

import numpy as np

CUES = ("tag", "band")

# the letter R, 5 columns x 7 rows (1 = ink)
_GLYPH_R = np.array(
    [
        [1, 1, 1, 1, 0],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 0],
        [1, 0, 1, 0, 0],
        [1, 0, 0, 1, 0],
        [1, 0, 0, 0, 1],
    ],
    dtype=bool,
)


def check_cue(kind: str) -> str:
    if kind not in CUES:
        raise ValueError(f"unknown shortcut cue {kind!r}; choose one of {', '.join(CUES)} (or none)")
    return kind


def tag_mask(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(tag area, ink)`` masks of one tag: the plate and the letter on it (bool ``size x size``)."""
    cell = max(1, round(size * 0.11 / 9))  # plate = 9 cells tall (glyph 7 + margin)
    h, w = 9 * cell, 7 * cell
    jitter = max(1, size // 40)
    top = max(0, round(size * 0.04) + int(rng.integers(0, jitter + 1)))
    left = max(0, size - w - round(size * 0.04) - int(rng.integers(0, jitter + 1)))
    plate = np.zeros((size, size), bool)
    plate[top : top + h, left : left + w] = True
    ink = np.zeros((size, size), bool)
    glyph = np.kron(_GLYPH_R, np.ones((cell, cell), bool))
    gy, gx = top + cell, left + cell
    ink[gy : gy + glyph.shape[0], gx : gx + glyph.shape[1]] = glyph[: size - gy, : size - gx]
    return plate, ink & plate


def band_mask(size: int) -> np.ndarray:
    out = np.zeros((size, size), bool)
    out[:, : max(1, round(size * 0.05))] = True
    return out


def add_cue(image: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(image with the cue, uint8 0/1 cue mask)``; the input is not modified."""
    check_cue(kind)
    img = np.array(image, np.float32)
    size = img.shape[0]
    if kind == "tag":
        plate, ink = tag_mask(size, rng)
        img[plate] = 0.95
        img[ink] = 0.1
        return img, plate.astype(np.uint8)
    band = band_mask(size)
    img[band] = np.clip(0.5 * img[band] + 0.5, 0, 1)
    return img, band.astype(np.uint8)

"""A lesion-like opacity drawn into a real radiograph, with its exact mask: pure numpy.

Why semi-synthetic: real box annotations are coarse and few, and a model that did not learn the
finding cannot be blamed on its explainer. Drawing the finding ourselves gives a task the model
does learn *and* a pixel-exact ground truth, so a heatmap that misses it is the explainer's (or
the layer's) fault. The backgrounds stay real X-rays, so texture, ribs and devices are real.

The opacity, in image units (``[0, 1]``, 1 = white, as an opacity looks on a radiograph):

* shape: an ellipse of radius ``r`` (``radius`` range, a fraction of the image side), aspect
  ``aspect`` range, random rotation;
* soft edge: the profile falls from 1 to 0 over ``edge`` x ``r`` around the ellipse's boundary
  (a smoothstep), and is exactly 0 beyond it, so the lesion touches no pixel outside its support;
* texture: the profile is multiplied by ``1 - texture + texture * n`` where ``n`` is smoothed
  noise in ``[0, 1]`` (a mottled opacity, not a flat disc);
* contrast: ``out = img + contrast * profile * (1 - img)``, i.e. the pixel moves ``contrast`` of
  the way to white: bright on dark lung, little on bright bone;
* position: the centre is drawn inside the lung field (:func:`lung_field`).

The mask (the ground truth) is ``profile >= 0.5``: the half-maximum contour of the opacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage


def _check_range(name: str, lo_hi: tuple[float, float], low: float, high: float) -> None:
    lo, hi = (float(v) for v in lo_hi)
    if not (low <= lo <= hi <= high):
        raise ValueError(f"lesion {name} must be a range lo <= hi within [{low}, {high}], got {lo_hi}")


@dataclass(frozen=True)
class LesionSettings:
    """How hard the lesion task is; the defaults are the benchmark's stated defaults.

    ``radius``: fraction of the image side (0.09-0.125 = 12-16 px at 128 px); ``contrast``: share
    of the way to white at the lesion's centre; ``edge``: soft-edge width as a fraction of the
    radius; ``texture``: mottling depth (0 = flat); ``aspect``: minor/major axis ratio.
    ``difficulty`` presets are in :data:`DIFFICULTY`.
    """

    radius: tuple[float, float] = (0.09, 0.125)
    contrast: tuple[float, float] = (0.45, 0.7)
    edge: float = 0.5
    texture: float = 0.35
    aspect: tuple[float, float] = (0.7, 1.0)

    def __post_init__(self) -> None:
        _check_range("radius", self.radius, 0.005, 0.3)
        _check_range("contrast", self.contrast, 0.0, 1.0)
        _check_range("aspect", self.aspect, 0.2, 1.0)
        if not 0.0 < self.edge <= 1.5:
            raise ValueError(f"lesion edge must be in (0, 1.5] (a fraction of the radius), got {self.edge}")
        if not 0.0 <= self.texture <= 1.0:
            raise ValueError(f"lesion texture must be in [0, 1], got {self.texture}")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def in_pixels(self, size: int) -> dict:
        """The radius range in pixels at ``size`` (what the report states)."""
        return {"radius_px": [round(self.radius[0] * size, 1), round(self.radius[1] * size, 1)]}


#: named difficulty presets for ``--difficulty``: easy is the default, hard is what the issue's
#: throwaway measurement did not learn in 40 epochs (faint, small)
DIFFICULTY = {
    "easy": LesionSettings(),
    "medium": LesionSettings(radius=(0.06, 0.1), contrast=(0.3, 0.5)),
    "hard": LesionSettings(radius=(0.04, 0.085), contrast=(0.15, 0.3)),
}


def lung_field(size: int) -> np.ndarray:
    """An approximate lung field for a frontal film: two upright ellipses in the central thorax.

    Used when the source has no lung masks. Centres at 31% and 69% of the width, 47% of the
    height; semi-axes 13% of the width and 27% of the height: on the NIH and Kermany PA films
    this covers both lungs and spares the mediastinum, the diaphragm and the border (labels,
    markers). A stated approximation, not a segmentation.
    """
    if size < 8:
        raise ValueError(f"size={size} is too small for a lung field")
    r, c = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    out = np.zeros((size, size), bool)
    for cx in (0.31, 0.69):
        out |= ((c / size - cx) / 0.13) ** 2 + ((r / size - 0.47) / 0.27) ** 2 <= 1.0
    return out


def smooth_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to ``[0, 1]`` (the lesion's mottling)."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(scale, 0.5))
    lo, hi = float(n.min()), float(n.max())
    return (n - lo) / (hi - lo) if hi > lo else np.full(shape, 0.5)


def lesion_profile(
    size: int,
    centre: tuple[float, float],
    radius: float,
    aspect: float,
    angle: float,
    edge: float,
) -> np.ndarray:
    """The opacity's envelope in ``[0, 1]`` on a ``size x size`` grid (1 inside, smoothstep edge).

    ``centre`` is ``(row, col)`` in pixels, ``radius`` the major semi-axis in pixels. The profile
    is 0.5 on the ellipse itself and exactly 0 beyond ``radius * (1 + edge / 2)``.
    """
    r, c = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dy, dx = r - centre[0], c - centre[1]
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = ca * dx + sa * dy, -sa * dx + ca * dy
    d = np.sqrt((u / radius) ** 2 + (v / (radius * aspect)) ** 2)  # 1 on the ellipse
    t = np.clip((1.0 + edge / 2 - d) / edge, 0.0, 1.0)  # 0 outside, 1 well inside
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Lesion:
    """One drawn lesion: where, how big, how bright (recorded per image in the task's index)."""

    row: float
    col: float
    radius: float  # pixels
    contrast: float


def draw_lesion(
    image: np.ndarray,
    rng: np.random.Generator,
    settings: LesionSettings | None = None,
    field: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, Lesion]:
    """Draw one lesion into a float image in ``[0, 1]`` (``size x size``).

    Returns ``(new image, uint8 0/1 mask, Lesion)``; the input is not modified. The centre is a
    uniformly drawn pixel of ``field`` (default :func:`lung_field`) at least half a radius inside
    its edge when such pixels exist.
    """
    settings = settings or LesionSettings()
    img = np.asarray(image, np.float64)
    if img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise ValueError(f"expected a square 2-D image, got shape {img.shape}")
    size = img.shape[0]
    field = lung_field(size) if field is None else np.asarray(field, bool)
    radius = float(rng.uniform(*settings.radius)) * size
    inner = ndimage.distance_transform_edt(field) >= 0.5 * radius
    candidates = np.flatnonzero(inner if inner.any() else field)
    if not len(candidates):
        raise ValueError("the lung field is empty; cannot place a lesion")
    pick = int(candidates[rng.integers(len(candidates))])
    row, col = divmod(pick, size)
    row_f, col_f = row + float(rng.uniform(0, 1)), col + float(rng.uniform(0, 1))
    aspect = float(rng.uniform(*settings.aspect))
    angle = float(rng.uniform(0, np.pi))
    contrast = float(rng.uniform(*settings.contrast))
    profile = lesion_profile(size, (row_f, col_f), radius, aspect, angle, settings.edge)
    texture = 1.0 - settings.texture + settings.texture * smooth_noise(img.shape, radius / 4, rng)
    alpha = contrast * profile * texture
    out = img + alpha * (1.0 - img)
    mask = (profile >= 0.5).astype(np.uint8)
    return out.astype(np.float32), mask, Lesion(row_f, col_f, radius, contrast)


def jitter(image: np.ndarray, rng: np.random.Generator, amount: float = 0.15) -> np.ndarray:
    """A random gamma and brightness change: variants of one background differ beyond the lesion,
    so the network cannot tell a positive copy from a negative one by anything but the lesion."""
    if amount <= 0:
        return np.asarray(image, np.float32)
    gamma = float(np.exp(rng.uniform(-amount, amount) * 1.5))
    shift = float(rng.uniform(-amount, amount) * 0.3)
    return np.clip(np.asarray(image, np.float64) ** gamma + shift, 0.0, 1.0).astype(np.float32)

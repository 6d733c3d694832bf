"""Where the heatmap mass lies outside the anatomy: the image border and, with lung masks, outside the lungs.

A chest X-ray classifier that looks at the border (laterality markers, collimation edges, text
burnt into the image; Zech et al. 2018, DeGrave et al. 2021) or outside the lung fields has
learned a shortcut, or its map is an artefact (a coarse CAM grid whose corner cell wins). No
ground truth is needed to see it, so these figures are computed for every run.

Stated once, so the numbers can be checked by hand:

* the **border** is every pixel within ``k`` pixels of an image edge, ``k = max(1, round(side *
  BORDER_FRACTION))`` of the explained map (28 px -> 2 px, 64 px -> 4 px, 224 px -> 14 px), so the
  same share of the image counts as border whatever its size (about a quarter:
  :func:`border_area_share`);
* **border energy** is the share of the (non-negative) heatmap mass on the border; a map that
  knows nothing (uniform) scores the border's area share. Empty (constant) maps point nowhere:
  they are counted (``n_empty``, with a warning) and left out of the border figures;
* **outside-lung energy** is the share of the mass outside a lung mask (1 - energy inside).

:func:`anatomy_warnings` turns the means into the sentences the report and ``explain_metrics.json``
carry: a warning when the mean border energy is at least :data:`BORDER_WARN_RATIO` times the
border's area share, or when the mean outside-lung energy is at least :data:`OUTSIDE_WARN`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chestxai.explain.localization import energy_inside

BORDER_FRACTION = 1 / 16  # border width as a fraction of the map's shorter side
BORDER_WARN_RATIO = 2.0  # warn when the border holds >= 2x the mass a uniform map would put there
OUTSIDE_WARN = 0.5  # warn when at least half of the mass lies outside the lungs
#: mask labels that mean "lung field" (anatomy, not a finding): the COVID-19 collection's "Lungs"
ANATOMY_LABELS = ("lungs", "lung", "lung field", "lung fields")


def border_width(shape: Sequence[int], fraction: float = BORDER_FRACTION) -> int:
    """``k``: the border width in pixels for a map of ``shape`` (see the module doc)."""
    return max(1, int(round(min(int(shape[0]), int(shape[1])) * fraction)))


def border_mask(shape: Sequence[int], k: int | None = None) -> np.ndarray:
    """Boolean mask of the pixels within ``k`` px of an edge (``k`` default: :func:`border_width`)."""
    h, w = int(shape[0]), int(shape[1])
    k = border_width(shape) if k is None else int(k)
    if k < 0:
        raise ValueError(f"border width must be >= 0 pixels, got {k}")
    inner = np.zeros((h, w), bool)
    inner[k : h - k, k : w - k] = True
    return ~inner


def border_area_share(shape: Sequence[int], k: int | None = None) -> float:
    """Share of the image's pixels on the border: a uniform map's border energy."""
    return float(border_mask(shape, k).mean())


def border_energy(heatmap: np.ndarray, k: int | None = None) -> float:
    """Share of the heatmap's mass within ``k`` px of the border (0 for an all-zero map)."""
    hm = np.asarray(heatmap)
    return energy_inside(hm, border_mask(hm.shape, k))


def peak_on_border(heatmap: np.ndarray, k: int | None = None) -> bool:
    """Does the map's maximum (first in row-major order) lie on the border?"""
    hm = np.asarray(heatmap)
    r, c = np.unravel_index(int(np.argmax(hm)), hm.shape)
    return bool(border_mask(hm.shape, k)[r, c])


def outside_energy(heatmap: np.ndarray, region: np.ndarray) -> float:
    """Share of the heatmap's mass outside ``region`` (e.g. a lung mask of the heatmap's size)."""
    hm = np.clip(np.asarray(heatmap, np.float64), 0, None)
    if hm.sum() <= 0:
        return 0.0
    return 1.0 - energy_inside(hm, region)


def is_anatomy_label(label: str) -> bool:
    return str(label).strip().lower() in ANATOMY_LABELS


def anatomy_summary(
    heatmaps: np.ndarray, lung_masks: Sequence[np.ndarray | None] | None = None, k: int | None = None
) -> dict:
    """Mean border energy (with the border's area share and the share of peaks on it) of
    ``N x S x S`` heatmaps, and the mean outside-lung energy over items with a lung mask."""
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 3 or not len(heatmaps):
        raise ValueError(f"expected N x H x W heatmaps with N >= 1, got shape {heatmaps.shape}")
    shape = heatmaps.shape[1:]
    k = border_width(shape) if k is None else int(k)
    shown = [hm for hm in heatmaps if np.ptp(hm) > 0]  # an empty (constant) map points nowhere
    out = {
        "n": int(len(heatmaps)),
        "n_empty": int(len(heatmaps) - len(shown)),
        "map_size": [int(shape[0]), int(shape[1])],
        "border_px": k,
        "border_area_share": border_area_share(shape, k),
        "border_energy": float(np.mean([border_energy(hm, k) for hm in shown])) if shown else None,
        "peaks_on_border": float(np.mean([peak_on_border(hm, k) for hm in shown])) if shown else None,
        "outside_lungs": None,
        "n_lung_masks": 0,
    }
    if lung_masks is not None:
        pairs = [(hm, m) for hm, m in zip(heatmaps, lung_masks, strict=True) if m is not None and m.any()]
        if pairs:
            out["outside_lungs"] = float(np.mean([outside_energy(hm, m) for hm, m in pairs]))
            out["n_lung_masks"] = len(pairs)
    return out


def anatomy_warnings(summary: dict | None, method: str) -> list[str]:
    """The warnings :func:`anatomy_summary` figures call for (empty when the map looks inside)."""
    if not summary:
        return []
    out = []
    share, energy = summary["border_area_share"], summary["border_energy"]
    if summary.get("n_empty"):
        out.append(
            f"{method}: {summary['n_empty']} of {summary['n']} maps are empty (constant), so they show "
            f"nothing for those images (Grad-CAM's channel-averaged gradients can cancel to a map that its "
            f"ReLU zeroes, typically at shallow layers); the figures cover the other maps. Try another "
            f"layer or method (`chestxai explain RUN --compare-layers`, `--compare-methods`)."
        )
    if energy is not None and share > 0 and energy >= BORDER_WARN_RATIO * share:
        out.append(
            f"{method}: {energy:.0%} of the heatmap mass lies within {summary['border_px']} px of the image "
            f"border, which holds {share:.0%} of the pixels (warning at {BORDER_WARN_RATIO:g}x); "
            f"{summary['peaks_on_border']:.0%} of the maxima are on the border. The model may use a "
            f"shortcut at the edges (markers, collimation, text), or the map is too coarse to tell."
        )
    outside = summary.get("outside_lungs")
    if outside is not None and outside >= OUTSIDE_WARN:
        out.append(
            f"{method}: {outside:.0%} of the heatmap mass lies outside the lungs on the "
            f"{summary['n_lung_masks']} images with a lung mask (warning at {OUTSIDE_WARN:.0%})."
        )
    return out

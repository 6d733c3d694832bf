"""How alike two stacks of saliency maps are, and how alike maps of *different* images are.

Arun et al. (Radiology: AI 2021, "Assessing the trustworthiness of saliency maps for localizing
abnormalities in medical imaging") judge every map comparison - trained vs randomised model,
one run vs a retrained one (repeatability), one architecture vs another (reproducibility) -
against one **baseline: the mean SSIM of 50 random pairs of the trained model's maps of different
images**. Two unrelated maps of one model are that alike on average, so

* a randomised model's maps should be no more like the trained maps than that (else the maps do
  not depend on what was learned), and
* a retrained model's maps of the *same* images should be clearly more alike than that (else the
  maps are not repeatable).

The same baseline measures **image-independence**: when maps of different images are nearly as
alike as a map with itself, the method draws one picture whatever the image (a fixed central blob,
a padding artefact), and no localisation figure of it explains an image. That is reported in words
wherever the maps are shown (:func:`image_independence`).

SSIM is the standard one (:func:`chestxai.metrics.image_similarity.ssim`, Gaussian 11 x 11 window,
interior windows only, data range 1: maps are in [0, 1]). Spearman is the absolute rank correlation
of the pixel values (Adebayo et al.'s choice), with the constant-map rules of :func:`map_similarity`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from chestxai.metrics.image_similarity import ssim

#: Arun et al.'s number of random pairs of different images for the baseline
N_PAIRS = 50
#: maps of different images whose mean |Spearman| reaches this are called image-independent: they
#: rank pixels as alike as a randomised model's maps must not (the sanity check's threshold)
IMAGE_INDEPENDENT_SPEARMAN = 0.5


def map_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-map standard SSIM of two ``N x H x W`` stacks of maps in [0, 1]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"maps must be two N x H x W stacks of one shape, got {a.shape} and {b.shape}")
    return ssim(a, b, data_range=1.0)


def map_similarity(reference: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Per-map |Spearman| and SSIM of two ``N x H x W`` stacks of maps in [0, 1].

    A constant map has no ranks. Where ``other`` is constant and ``reference`` is not, the map
    changed: Spearman 0 (``constant``). Where ``reference`` itself is constant (an empty trained
    map), nothing can be compared: NaN (``undefined``), left out of the means."""
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    if reference.shape != other.shape or reference.ndim != 3:
        raise ValueError(
            f"maps must be two N x H x W stacks of one shape, got {reference.shape} and {other.shape}"
        )
    rho = np.zeros(len(reference))
    constant = np.zeros(len(reference), bool)
    undefined = np.zeros(len(reference), bool)
    for i, (a, b) in enumerate(zip(reference, other, strict=True)):
        if np.ptp(a) == 0:
            undefined[i], rho[i] = True, np.nan
        elif np.ptp(b) == 0:
            constant[i] = True
        else:
            rho[i] = abs(stats.spearmanr(a.ravel(), b.ravel()).statistic)
    similarity = map_ssim(reference, other) if len(reference) else np.zeros(0)
    similarity[undefined] = np.nan
    return {"spearman": rho, "ssim": similarity, "constant": constant, "undefined": undefined}


def summarise_similarity(sim: dict[str, np.ndarray]) -> dict[str, Any]:
    """The means of :func:`map_similarity`'s per-map figures (undefined maps left out), with how
    many maps were compared: what every map comparison (randomisation, runs, pairs) reports."""
    rho, s = sim["spearman"], sim["ssim"]
    defined = ~np.isnan(rho)
    return {
        "spearman": float(rho[defined].mean()) if defined.any() else None,
        "spearman_std": float(rho[defined].std()) if defined.any() else None,
        "ssim": None if np.isnan(s).all() else float(np.nanmean(s)),
        "n_compared": int(defined.sum()),
        "n_constant": int(sim["constant"].sum()),
    }


def random_pairs(n: int, n_pairs: int = N_PAIRS, seed: int = 0) -> np.ndarray:
    """``n_pairs x 2`` indices ``(i, j)``, ``i != j``, of distinct unordered pairs drawn without
    replacement (all ``n (n - 1) / 2`` of them when there are fewer); seeded."""
    if n < 2:
        return np.zeros((0, 2), np.int64)
    i, j = np.triu_indices(n, k=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(i), size=min(n_pairs, len(i)), replace=False)
    pairs = np.stack([i[pick], j[pick]], axis=1)
    flip = rng.random(len(pairs)) < 0.5  # which of the two comes first carries no meaning
    pairs[flip] = pairs[flip][:, ::-1]
    return pairs.astype(np.int64)


def random_pairs_baseline(maps: np.ndarray, n_pairs: int = N_PAIRS, seed: int = 0) -> dict[str, Any]:
    """Arun et al.'s baseline: SSIM (and |Spearman|) of ``n_pairs`` random pairs of maps of
    *different* images of one model. ``maps``: ``N x H x W`` in [0, 1], one per image (give one map
    per image: two maps of the same image would not be a pair of different images)."""
    maps = np.asarray(maps, np.float64)
    pairs = random_pairs(len(maps), n_pairs, seed)
    if not len(pairs):
        return {"ssim": None, "ssim_std": None, "spearman": None, "n_pairs": 0, "n_maps": int(len(maps))}
    sim = map_similarity(maps[pairs[:, 0]], maps[pairs[:, 1]])
    summary = summarise_similarity(sim)
    s = sim["ssim"][~np.isnan(sim["ssim"])]
    return {
        "ssim": summary["ssim"],
        "ssim_std": float(s.std()) if len(s) else None,
        "spearman": summary["spearman"],
        "n_pairs": int(len(pairs)),
        "n_maps": int(len(maps)),
        "seed": int(seed),
        "definition": f"mean SSIM of {len(pairs)} random pairs of maps of different images (Arun et al. 2021)",
    }


def image_independence(baseline: dict[str, Any], method: str = "the method") -> str | None:
    """One sentence when ``baseline``'s maps of different images rank pixels nearly alike, else None."""
    rho = baseline.get("spearman")
    if rho is None or rho < IMAGE_INDEPENDENT_SPEARMAN:
        return None
    return (
        f"{method}'s maps hardly change from image to image: {baseline['n_pairs']} random pairs of maps of "
        f"different images have mean |Spearman| {rho:.2f} (>= {IMAGE_INDEPENDENT_SPEARMAN:g}) and mean SSIM "
        f"{baseline['ssim']:.2f}; they show one picture whatever the image, so they do not explain these images"
    )

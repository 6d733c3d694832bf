"""Arun et al.'s trust criteria of saliency maps: randomisation, repeatability, reproducibility.

Arun et al. (Radiology: AI 2021, "Assessing the trustworthiness of saliency maps for localizing
abnormalities in medical imaging") judge every map comparison by SSIM against one **baseline: the
mean SSIM of 50 random pairs of the trained model's maps of different images**
(:func:`chestxai.explain.map_agreement.random_pairs_baseline`, computed by the caller on the
trained run's maps, one per image, and handed in as ``baseline``).

* **Sensitivity to weight randomisation** (:func:`randomisation_block`): the weights are
  re-initialised from the head down (cascading) and, beside it, one block at a time (independent);
  the maps of each randomised model are compared with the trained model's maps of the same images.
  Their rule (Fig. 3 of the paper: "a saliency model successfully reaches degradation if it goes
  below its corresponding randomization baseline") read for the fully randomised model: **pass when
  the mean SSIM of the last cascading step is below the baseline** - with every weight destroyed the
  maps are no more like the trained maps than maps of two different images are. Strictly below: a
  method whose maps are one picture for every image and every model has final SSIM = baseline = 1
  and must not pass. Adebayo et al.'s rule (mean |Spearman| < 0.5,
  :data:`chestxai.explain.sanity.SANITY_THRESHOLD`) is kept beside it (``spearman_rule_pass``).
* **Repeatability** (same recipe retrained with other seeds) and **reproducibility** (other
  architectures on the same data) (:func:`agreement_block`): SSIM of the maps of the *same*
  (image, finding) items between the reference run and each other run. Arun et al. plot these
  SSIMs against a localisation network's (a U-Net's / RetinaNet's) own repeatability, which
  chestxai does not train; the bar used here is the lower one of the same paper, the random-pairs
  baseline: **pass when the mean SSIM of same-image maps across runs is above the baseline** - maps
  of one image from retrained models must be more alike than maps of different images from one
  model, else the retrained models do not draw the same explanation of that image.

SSIM is the standard one (Gaussian 11 x 11 window, maps in [0, 1]) through
:mod:`chestxai.explain.map_agreement`; a map whose reference is constant (an empty Grad-CAM) cannot
be compared and is left out of the means (``n_compared``), as in the baseline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from chestxai.explain.map_agreement import image_independence, map_similarity, summarise_similarity
from chestxai.explain.overlay import resize_heatmap
from chestxai.explain.sanity import SANITY_THRESHOLD, randomisation_similarity
from chestxai.scorecard.maps import MapSet

log = logging.getLogger(__name__)

AGREEMENT_KINDS = {
    "repeatability": "the same recipe retrained with other seeds",
    "reproducibility": "other architectures trained on the same data",
}
#: headline localisation figures whose spread across runs is reported (keys of the localisation block)
SPREAD_METRICS = ("hit_rate", "miou_otsu", "miou_tuned", "auprc", "relevance_mass", "relevance_rank")

RANDOMISATION_RULE = (
    "Arun et al. 2021: pass when the mean SSIM between the fully randomised model's maps (every block "
    "re-initialised, cascading from the head down) and the trained model's maps of the same images is "
    "below the baseline, the mean SSIM of random pairs of the trained model's maps of different images"
)


def _baseline_ssim(baseline: Mapping[str, Any] | None) -> float | None:
    value = None if baseline is None else baseline.get("ssim")
    return None if value is None else float(value)


def randomisation_block(
    model: nn.Module,
    inputs: torch.Tensor,
    indices: Sequence[int] | None,
    method: str,
    layer: str | None,
    *,
    baseline: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, Any]:
    """Cascading and independent weight randomisation of ``method`` at ``layer``, judged by Arun et al.

    ``inputs``: model inputs ``N x C x S x S``; ``indices[i]``: the output explained for image i;
    ``baseline``: the trained run's random-pairs baseline of this (method, layer)
    (:func:`~chestxai.explain.map_agreement.random_pairs_baseline`). Returns ``{cascading,
    independent (the rows of randomisation_similarity: randomised, blocks, spearman, ssim, ...),
    baseline_ssim, final_ssim, final_spearman, pass (bool, None when there is nothing to compare),
    rule, spearman_rule_pass, spearman_threshold, spearman_rule, spearman_verdict (the sanity check's
    sentence), layer, n_images, n_empty_trained_maps, verdict}``; ``model`` is unchanged.
    """
    sanity = randomisation_similarity(
        model,
        inputs,
        method,
        layer,
        indices=indices,
        modes=("cascading", "independent"),
        seed=seed,
        batch_size=batch_size,
        options=options,
        progress=progress,
    )
    final = sanity["final"] or {}
    final_ssim, final_rho = final.get("ssim"), final.get("spearman")
    base = _baseline_ssim(baseline)
    passed = None if final_ssim is None or base is None else bool(final_ssim < base)
    block = {
        "cascading": sanity["cascading"],
        "independent": sanity["independent"],
        "baseline_ssim": base,
        "final_ssim": final_ssim,
        "final_spearman": final_rho,
        "pass": passed,
        "rule": RANDOMISATION_RULE,
        "spearman_rule_pass": sanity["passed"],
        "spearman_threshold": SANITY_THRESHOLD,
        "spearman_verdict": sanity.get("verdict"),
        "spearman_rule": (
            f"Adebayo et al. 2018: pass when the fully randomised model's maps have mean |Spearman| "
            f"< {SANITY_THRESHOLD:g} to the trained maps"
        ),
        "layer": sanity["layer"],
        "n_images": sanity["n_images"],
        "n_empty_trained_maps": sanity["n_empty_trained_maps"],
    }
    block["verdict"] = _randomisation_verdict(block, method, baseline)
    return block


def _randomisation_verdict(block: Mapping[str, Any], method: str, baseline: Mapping[str, Any]) -> str:
    final, base = block["final_ssim"], block["baseline_ssim"]
    if final is None:
        return (
            f"no verdict: every trained map of {method} is empty (constant), so no randomised map can be "
            "compared with it; explain another layer or method"
        )
    if base is None:
        why = (
            "fewer than two maps of different images"
            if not baseline.get("n_pairs")
            else f"the first map of each of its {baseline['n_pairs']} pairs is empty (constant)"
        )
        return f"no verdict: no random-pairs baseline ({why})"
    if block["pass"]:
        sentence = (
            f"passed: with every block re-initialised, the maps' mean SSIM to the trained maps is {final:.2f}, "
            f"below the {base:.2f} of maps of different images; the maps depend on what the model learned"
        )
        if image_independence(baseline, method) is not None:
            sentence += (
                " (but the trained maps themselves hardly change from image to image, so this baseline is a "
                "low bar)"
            )
        return sentence
    return (
        f"FAILED: with every block re-initialised, the maps' mean SSIM to the trained maps is still {final:.2f}, "
        f"not below the {base:.2f} of maps of different images; {method}'s maps do not depend on what the "
        "model learned (they show the image or the architecture, not the decision)"
    )


def _resized(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if maps.shape[1:] == tuple(shape):
        return np.asarray(maps, np.float64)
    return np.stack([resize_heatmap(m, shape) for m in maps]).astype(np.float64)


def _run_names(others: Sequence[MapSet]) -> list[str]:
    """Each other run's name, made unique (``name#2``) when two runs share one."""
    names: list[str] = []
    for m in others:
        name, k = m.run, 1
        while name in names:
            k += 1
            name = f"{m.run}#{k}"
        names.append(name)
    return names


def agreement_block(
    reference: MapSet, others: Sequence[MapSet], baseline: Mapping[str, Any], kind: str
) -> dict[str, Any]:
    """SSIM of the maps of the same (image_id, finding) items between ``reference`` and each run of
    ``others`` (Arun et al.'s repeatability / reproducibility; see the module doc).

    Items are matched by id; an item missing from another run is left out of that run's figure. Maps
    of another size (another architecture's input size) are resized bilinear to the reference's.
    Returns ``{kind, protocol, ssim (mean over every compared item of every run), ssim_per_run
    ({run: mean}), spearman, spearman_per_run, n_items (compared items, all runs), n_items_per_run,
    n_runs, baseline_ssim, pass (None when nothing was compared or there is no baseline), rule,
    verdict}``.
    """
    if kind not in AGREEMENT_KINDS:
        raise ValueError(f"unknown agreement kind {kind!r}; use one of {', '.join(AGREEMENT_KINDS)}")
    if not others:
        raise ValueError(f"{kind} needs at least one other run; give the runs of {AGREEMENT_KINDS[kind]}")
    position = {
        (i, f): k for k, (i, f) in enumerate(zip(reference.image_ids, reference.findings, strict=True))
    }
    shape = tuple(reference.maps.shape[1:])
    ssim_per_run: dict[str, float | None] = {}
    rho_per_run: dict[str, float | None] = {}
    n_per_run: dict[str, int] = {}
    all_ssim: list[np.ndarray] = []
    all_rho: list[np.ndarray] = []
    for name, other in zip(_run_names(others), others, strict=True):
        pairs = [
            (position[key], j)
            for j, key in enumerate(zip(other.image_ids, other.findings, strict=True))
            if key in position
        ]
        if not pairs:
            log.warning("%s: run %s shares no (image, finding) item with %s", kind, name, reference.run)
            ssim_per_run[name], rho_per_run[name], n_per_run[name] = None, None, 0
            continue
        ref_idx, other_idx = (np.array(p, np.int64) for p in zip(*pairs, strict=True))
        sim = map_similarity(
            np.asarray(reference.maps, np.float64)[ref_idx],
            _resized(np.asarray(other.maps)[other_idx], shape),
        )
        summary = summarise_similarity(sim)
        ssim_per_run[name], rho_per_run[name] = summary["ssim"], summary["spearman"]
        n_per_run[name] = int((~np.isnan(sim["ssim"])).sum())
        all_ssim.append(sim["ssim"])
        all_rho.append(sim["spearman"])
    ssim_all = np.concatenate(all_ssim) if all_ssim else np.zeros(0)
    rho_all = np.concatenate(all_rho) if all_rho else np.zeros(0)
    defined = ~np.isnan(ssim_all)
    mean_ssim = float(ssim_all[defined].mean()) if defined.any() else None
    mean_rho = float(np.nanmean(rho_all)) if (~np.isnan(rho_all)).any() else None
    base = _baseline_ssim(baseline)
    passed = None if mean_ssim is None or base is None else bool(mean_ssim > base)
    block = {
        "kind": kind,
        "protocol": (
            f"Arun et al. 2021 {kind}: mean standard SSIM of the maps of the same (image, finding) items between "
            f"the reference run and {len(others)} run(s) of {AGREEMENT_KINDS[kind]} (maps resized bilinear to "
            "the reference's size; items with an empty reference map left out)"
        ),
        "ssim": mean_ssim,
        "ssim_per_run": ssim_per_run,
        "spearman": mean_rho,
        "spearman_per_run": rho_per_run,
        "n_items": int(defined.sum()),
        "n_items_per_run": n_per_run,
        "n_runs": len(others),
        "baseline_ssim": base,
        "pass": passed,
        "rule": (
            f"pass when the mean SSIM of maps of the same images across runs is above the baseline, the mean SSIM "
            f"of random pairs of the reference run's maps of different images (Arun et al. 2021 also show a "
            f"localisation network's {kind}, which is not trained here)"
        ),
    }
    block["verdict"] = _agreement_verdict(block)
    return block


def _agreement_verdict(block: Mapping[str, Any]) -> str:
    kind, s, base = block["kind"], block["ssim"], block["baseline_ssim"]
    if s is None:
        return f"no verdict: no map of the same item could be compared across runs for {kind}"
    if base is None:
        return f"no verdict: {kind} SSIM {s:.2f} but no random-pairs baseline to judge it against"
    if block["pass"]:
        return (
            f"passed: maps of the same images across {block['n_runs']} run(s) have mean SSIM {s:.2f}, above the "
            f"{base:.2f} of maps of different images"
        )
    return (
        f"FAILED: maps of the same images across {block['n_runs']} run(s) have mean SSIM {s:.2f}, no more alike "
        f"than the {base:.2f} of maps of different images; the explanation changes with the "
        f"{'seed' if kind == 'repeatability' else 'architecture'}"
    )


def _value(entry: Any) -> float | None:
    if isinstance(entry, Mapping):
        entry = entry.get("value")
    return None if entry is None else float(entry)


def spread(localisation_blocks: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """Spread across runs (``{run: localisation block}``; a None block - no ground truth - is left
    out) of each headline localisation value (:data:`SPREAD_METRICS`) and of the accuracy at each IoBB
    threshold (``iobb_accuracy.<t>``): ``{metric: {values: {run: v}, mean, min, max, std, n_runs}}``;
    ``std`` is the sample standard deviation (ddof 1; None with one run)."""
    blocks = {run: b for run, b in localisation_blocks.items() if b is not None}
    names: list[tuple[str, tuple[str, ...]]] = [(m, (m,)) for m in SPREAD_METRICS]
    thresholds = dict.fromkeys(t for b in blocks.values() for t in (b.get("iobb_accuracy") or {}))
    names += [(f"iobb_accuracy.{t}", ("iobb_accuracy", t)) for t in thresholds]
    out: dict[str, Any] = {}
    for label, path in names:
        values: dict[str, float] = {}
        for run, block in blocks.items():
            node: Any = block
            for key in path:
                node = node.get(key) if isinstance(node, Mapping) else None
            v = _value(node)
            if v is not None and not np.isnan(v):
                values[run] = v
        arr = np.array(list(values.values()), np.float64)
        out[label] = {
            "values": values,
            "mean": float(arr.mean()) if len(arr) else None,
            "min": float(arr.min()) if len(arr) else None,
            "max": float(arr.max()) if len(arr) else None,
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
            "n_runs": int(len(arr)),
        }
    return out

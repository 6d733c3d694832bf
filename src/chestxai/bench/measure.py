"""Every method at every target layer on the same items, with the random control per layer.

Why per layer: on a 128 px input ResNet's ``layer4`` is a 4 x 4 grid, so any map read there can
only point at one of 16 cells, each 32 px wide: a 12 px lesion is localised by luck. The layer
matters more than the method, so the benchmark ranks (method, layer) pairs, not methods.

Compute only (heatmaps and scores come from :func:`chestxai.explain.measure.measure_method`, the
code ``chestxai explain`` runs); :mod:`chestxai.bench.run` writes the results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from chestxai.explain.items import Item
from chestxai.explain.localization import energy_inside, heatmap_peak
from chestxai.explain.measure import MethodResult, measure_method
from chestxai.explain.methods import CONTROL, UnsupportedMethodError
from chestxai.explain.overlay import resize_heatmap
from chestxai.explain.settings import ExplainSettings

log = logging.getLogger(__name__)

METRICS = ("pointing_game", "iobb", "energy", "iou")


def layer_grid(model: torch.nn.Module, layer: str, size: int) -> list[int]:
    """The ``h x w`` of ``layer``'s output at ``size`` px (what the heatmap is upsampled from)."""
    from chestxai.explain.layers import resolve_layer

    name, module = resolve_layer(model, layer)
    seen: list[tuple[int, int]] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[-2:])))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 1, size, size, device=device))
    finally:
        handle.remove()
    return list(seen[-1]) if seen else []


def summary_row(res: MethodResult) -> dict:
    """One (method, layer) row: the localization means over the scored items."""
    loc = res.localization()
    overall = (loc or {}).get("overall") or {}
    row = {"method": res.method, "layer": res.layer, "n": int(overall.get("n", 0))}
    for k in METRICS:
        row[k] = overall.get(k)
    row["acc_iobb_0.5"] = overall.get("acc_iobb_0.5")
    row["alignment_shift_px"] = [float(v) for v in res.shift]  # what the pointing game depends on
    row["images_per_s"] = res.images_per_second
    return row


def rank_key(row: dict) -> tuple:
    """Pointing game, then IoBB, then energy (the ranking ``compare_methods`` uses)."""
    return tuple(
        -(row.get(k) if row.get(k) is not None else -1.0) for k in ("pointing_game", "iobb", "energy")
    )


def measure_layers(
    model: torch.nn.Module,
    items: Sequence[Item],
    methods: Sequence[str],
    layers: Sequence[str],
    preprocess: dict,
    settings: ExplainSettings,
    progress: bool = False,
) -> tuple[list[dict], dict[tuple[str, str], MethodResult], dict[str, str]]:
    """``(rows, results by (method, layer), not applicable: method -> reason)`` for every pair.

    Faithfulness is not measured here (``settings.faithfulness_limit`` is set to 0): it costs many
    forwards per image, so :func:`faithfulness_at` runs it at each method's best layer only.
    """
    quick = replace(settings, faithfulness_limit=0)
    rows: list[dict] = []
    results: dict[tuple[str, str], MethodResult] = {}
    skipped: dict[str, str] = {}
    for name in [*methods, CONTROL] if CONTROL not in methods else list(methods):
        for layer in layers:
            try:
                res = measure_method(
                    model, items, name, preprocess, quick, _own_layer(model, name, layer), False
                )
            except UnsupportedMethodError as exc:
                skipped.setdefault(name, str(exc))
                log.info("%s at %s: not applicable (%s)", name, layer, exc)
                continue
            results[(name, layer)] = res
            row = summary_row(res)
            row["module"], row["layer"] = row["layer"], layer  # the dotted module, the name asked for
            rows.append(row)
            if progress:
                log.info("%s @ %s: pointing game %s", name, layer, row["pointing_game"])
    done = {m for m, _ in results}
    return rows, results, {m: why for m, why in skipped.items() if m not in done}


def _own_layer(model: torch.nn.Module, method: str, layer: str) -> str:
    """``layer``, except for a final-layer method (CAM, PCAM) asked for the stage that *ends* in the
    final feature map (``layer4`` ending in ``layer4.1``): then the exact module it is defined on."""
    from chestxai.explain.layers import resolve_layer, trace_layers
    from chestxai.explain.methods import get_method

    if not get_method(method).final_layer_only:
        return layer
    final = trace_layers(model).final
    name, _ = resolve_layer(model, layer)
    return final if final.startswith(name + ".") else layer


def best_layers(rows: Sequence[dict]) -> dict[str, dict]:
    """Per method, its best row (by :func:`rank_key`)."""
    out: dict[str, dict] = {}
    for row in sorted(rows, key=rank_key):
        out.setdefault(row["method"], row)
    return out


def pointing_game_unaligned(
    model: torch.nn.Module,
    items: Sequence[Item],
    method: str,
    layer: str,
    preprocess: dict,
    settings: ExplainSettings,
) -> float | None:
    """The pointing game of ``method`` at ``layer`` with pytorch-grad-cam's maps as they are
    (``align=False``). The alignment shift is measured on each trained model and rounded to 0.5 px,
    and the headline figure moves with it (issue 20: 0.84 with the measured shift, 0.53 without), so
    the benchmark reports both."""
    res = measure_method(
        model, items, method, preprocess, replace(settings, align=False, faithfulness_limit=0), layer
    )
    return ((res.localization() or {}).get("overall") or {}).get("pointing_game")


def faithfulness_at(
    model: torch.nn.Module,
    items: Sequence[Item],
    method: str,
    layer: str,
    preprocess: dict,
    settings: ExplainSettings,
) -> dict | None:
    """Deletion/insertion AUC and ROAD (the explain stage's definitions) on the first
    ``settings.faithfulness_limit`` items, or None when the limit is 0."""
    if not settings.faithfulness_limit:
        return None
    res = measure_method(model, items, method, preprocess, settings, layer, False)
    return res.faithfulness()


def cue_shares(result: MethodResult, items: Sequence[Item], cue_masks: dict[str, np.ndarray]) -> dict:
    """Share of heatmap energy on the cue vs on the lesion, and how often the peak is on the cue.

    ``cue_masks``: image id -> uint8 mask of the cue in the item's pixel space; items without a
    cue are left out.
    """
    on_cue, on_lesion, peak_cue, peak_lesion = [], [], [], []
    for it, hm in zip(items, result.heatmaps, strict=True):
        cue = cue_masks.get(it.image_id)
        if cue is None or it.gt_mask is None:
            continue
        full = resize_heatmap(hm, it.image.shape[:2])
        r, c = heatmap_peak(full)
        on_cue.append(energy_inside(full, cue))
        on_lesion.append(energy_inside(full, it.gt_mask))
        peak_cue.append(bool(cue[r, c]))
        peak_lesion.append(bool(it.gt_mask[r, c]))
    if not on_cue:
        return {"n": 0}
    return {
        "n": len(on_cue),
        "energy_on_cue": float(np.mean(on_cue)),
        "energy_on_lesion": float(np.mean(on_lesion)),
        "peak_on_cue": float(np.mean(peak_cue)),
        "peak_on_lesion": float(np.mean(peak_lesion)),
    }

"""The per-layer measurement helpers: layer naming, ranking, and the cue/lesion energy shares."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from chestxai.bench.measure import _own_layer, best_layers, cue_shares, layer_grid
from chestxai.explain.items import Item
from chestxai.explain.measure import MethodResult, measure_method
from chestxai.explain.settings import ExplainSettings
from chestxai.models import create_model


def test_final_layer_methods_read_the_stage_that_ends_in_the_final_map():
    model = create_model("resnet18", num_labels=1, task="binary", input_size=64)
    assert _own_layer(model, "cam", "layer4") == "backbone.layer4.1"
    assert _own_layer(model, "cam", "layer2") == "layer2"  # refused later, with the reason
    assert _own_layer(model, "gradcam", "layer4") == "layer4"
    assert layer_grid(model, "layer2", 64) == [8, 8] and layer_grid(model, "layer4", 64) == [2, 2]


def test_best_layer_ranks_by_pointing_game_then_iobb():
    rows = [
        {"method": "a", "layer": "l2", "pointing_game": 0.5, "iobb": 0.1, "energy": 0.1},
        {"method": "a", "layer": "l3", "pointing_game": 0.5, "iobb": 0.3, "energy": 0.0},
        {"method": "a", "layer": "l4", "pointing_game": 0.1, "iobb": 0.9, "energy": 0.9},
        {"method": "b", "layer": "l4", "pointing_game": None, "iobb": None, "energy": None},
    ]
    best = best_layers(rows)
    assert best["a"]["layer"] == "l3" and best["b"]["layer"] == "l4"


def test_cue_shares_split_the_heatmap_mass_between_cue_and_lesion():
    lesion = np.zeros((8, 8), bool)
    lesion[4:6, 4:6] = True
    cue = np.zeros((8, 8), np.uint8)
    cue[0:2, 6:8] = 1
    hm = np.zeros((8, 8), np.float32)
    hm[0:2, 6:8] = 1.0  # all mass, and the peak, on the cue
    items = [Item("x", np.zeros((8, 8), np.uint8), "Lesion", 0, gt_mask=lesion),
             Item("y", np.zeros((8, 8), np.uint8), "Lesion", 0, gt_mask=lesion)]  # fmt: skip
    res = MethodResult("m", "l", np.stack([hm, hm]), [[], []], pd.DataFrame(), 1.0, ExplainSettings())
    out = cue_shares(res, items, {"x": cue})  # "y" has no cue: left out
    assert out["n"] == 1 and out["energy_on_cue"] == 1.0 and out["energy_on_lesion"] == 0.0
    assert out["peak_on_cue"] == 1.0 and out["peak_on_lesion"] == 0.0
    assert cue_shares(res, items, {}) == {"n": 0}


def _lesion_items(n: int = 4, size: int = 64) -> list[Item]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        mask = np.zeros((size, size), bool)
        r, c = rng.integers(12, size - 12, 2)
        mask[r - 5 : r + 5, c - 5 : c + 5] = True
        image = (rng.random((size, size)) * 80 + 60 + 100 * mask).astype(np.uint8)
        items.append(Item(f"i{i}", image, "Lesion", 0, gt_mask=mask))
    return items


def test_bench_rows_record_the_alignment_shift_and_the_unaligned_pointing_game():
    """Issue 20 item 12: the headline pointing game depends on the alignment shift measured on each
    trained model, so every row names the shift and the best rows add the figure without it."""
    import torch

    from chestxai.bench.measure import measure_layers, pointing_game_unaligned

    torch.manual_seed(0)
    model = create_model("resnet18", num_labels=1, task="binary", input_size=64)
    preprocess = {"size": 64, "mean": 0.5, "std": 0.25}
    items, settings = _lesion_items(), ExplainSettings(overlays=False, faithfulness_limit=0)
    rows, results, _ = measure_layers(model, items, ["gradcam"], ["layer2"], preprocess, settings)
    by = {r["method"]: r for r in rows}
    assert by["gradcam"]["alignment_shift_px"] == [-3.5, -3.5]  # ResNet layer2, stride 8: (s - 1) / 2 back
    assert by["random"]["alignment_shift_px"] == [0.0, 0.0]  # the control is never moved
    unaligned = pointing_game_unaligned(model, items, "gradcam", "layer2", preprocess, settings)
    assert unaligned is not None and 0.0 <= unaligned <= 1.0
    aligned = results[("gradcam", "layer2")]
    again = measure_method(model, items, "gradcam", preprocess, replace(settings, align=False), "layer2")
    assert again.shift == (0.0, 0.0) and not np.array_equal(again.heatmaps, aligned.heatmaps)
    assert unaligned == again.localization()["overall"]["pointing_game"]


def test_bench_summary_prints_the_shift_and_the_unaligned_pointing_game():
    from chestxai.commands.bench import summary

    row = {"layer": "layer2", "pointing_game": 0.84, "iobb": 0.5, "energy": 0.2,
           "alignment_shift_px": [-3.5, -3.5], "pointing_game_unaligned": 0.53}  # fmt: skip
    out = {"val_auc": 0.99, "test_auc": 0.98, "n_explained": 10, "pointing_tolerance_px": 4.0,
           "methods": {"hirescam": row}, "random": None}  # fmt: skip
    line = summary(out).splitlines()[1]
    assert "pointing 0.840" in line and "(-3.5, -3.5)" in line and "0.530 unaligned" in line

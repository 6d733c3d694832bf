"""The per-layer measurement helpers: layer naming, ranking, and the cue/lesion energy shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from chestxai.bench.measure import _own_layer, best_layers, cue_shares, layer_grid
from chestxai.explain.items import Item
from chestxai.explain.measure import MethodResult
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

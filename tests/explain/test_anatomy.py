"""Border / outside-lung energy on synthetic heatmaps whose answer is known by hand, and the warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chestxai.explain.anatomy import (
    BORDER_WARN_RATIO,
    anatomy_summary,
    anatomy_warnings,
    border_area_share,
    border_energy,
    border_mask,
    border_width,
    outside_energy,
    peak_on_border,
)
from chestxai.explain.controls import entry_warnings, paired_comparison, versus_control


def test_border_width_scales_with_size():
    assert [border_width((s, s)) for s in (8, 28, 64, 224)] == [1, 2, 4, 14]
    assert border_width((28, 64)) == 2  # the shorter side


def test_border_energy_by_hand():
    hm = np.zeros((28, 28))
    hm[0, 5] = 3.0  # on the border (row 0)
    hm[14, 14] = 1.0  # centre
    assert border_width(hm.shape) == 2
    assert border_energy(hm) == pytest.approx(0.75)
    assert border_energy(hm, k=0) == 0.0
    hm[1, 27] = 4.0  # within 2 px of the right and top edges
    assert border_energy(hm) == pytest.approx(7 / 8) and peak_on_border(hm)
    assert border_mask((6, 6), 2).sum() == 36 - 4 and border_area_share((6, 6), 2) == pytest.approx(32 / 36)
    assert border_energy(np.ones((28, 28))) == pytest.approx(border_area_share((28, 28)))  # uniform map
    assert border_area_share((28, 28)) == pytest.approx(1 - 24**2 / 28**2)
    assert border_energy(np.zeros((8, 8))) == 0.0


def test_outside_energy_by_hand():
    hm = np.zeros((10, 10))
    hm[2:4, 2:4] = 1.0  # 4 units inside
    hm[8, 8] = 4.0  # 4 units outside
    lungs = np.zeros((10, 10), bool)
    lungs[1:6, 1:6] = True
    assert outside_energy(hm, lungs) == pytest.approx(0.5)
    assert outside_energy(np.zeros((10, 10)), lungs) == 0.0


def test_summary_and_warnings():
    hm = np.zeros((4, 28, 28), np.float32)
    hm[:, 0, :] = 1.0  # every map a hot top row
    lungs = [np.ones((28, 28), bool), None, np.zeros((28, 28), bool), None]
    s = anatomy_summary(hm, lungs)
    assert s["border_energy"] == pytest.approx(1.0) and s["peaks_on_border"] == 1.0
    assert s["n_lung_masks"] == 1 and s["outside_lungs"] == pytest.approx(0.0)  # empty masks do not count
    (warning,) = anatomy_warnings(s, "gradcam")
    assert "100% of the heatmap mass lies within 2 px" in warning and f"{BORDER_WARN_RATIO:g}x" in warning
    centre = np.zeros((2, 28, 28), np.float32)
    centre[:, 10:18, 10:18] = 1.0
    assert anatomy_warnings(anatomy_summary(centre), "gradcam") == []
    outside = anatomy_summary(centre, [np.zeros((28, 28), bool) | (np.arange(28)[:, None] < 3)] * 2)
    assert outside["outside_lungs"] == pytest.approx(1.0)
    assert "outside the lungs" in anatomy_warnings(outside, "gradcam")[0]
    with pytest.raises(ValueError, match="N x H x W"):
        anatomy_summary(np.zeros((28, 28)))


def test_paired_comparison_with_the_control():
    method = pd.Series([0.9, 0.8, 0.85, 0.95])
    control = pd.Series([0.1, 0.2, 0.15, 0.05])
    assert paired_comparison(method, control, higher_is_better=True)["beats"] is True
    assert paired_comparison(method, control, higher_is_better=False)["beats"] is False  # e.g. deletion AUC
    noisy = paired_comparison(pd.Series([0.5, 0.9, 0.1]), pd.Series([0.6, 0.3, 0.4]), True)
    assert noisy["beats"] is False  # mean +0.067 is within 2 SE
    assert paired_comparison(pd.Series([1.0]), pd.Series([0.0]), True)["beats"] is None
    assert paired_comparison(pd.Series([np.nan]), pd.Series([0.0]), True) is None
    vs = versus_control(
        pd.DataFrame({"hit": [1.0, 1.0, 1.0], "deletion_auc": [0.9, 0.9, 0.91]}),
        pd.DataFrame({"hit": [0.0, 0.0, 1.0], "deletion_auc": [0.5, 0.52, 0.49]}),
    )
    assert set(vs) == {"rule", "pointing_game", "deletion_auc"} and vs["deletion_auc"]["beats"] is False


def test_entry_warnings_name_every_problem():
    entry = {
        "method": "gradcam",
        "layer": "backbone.layer2",
        "grid": [4, 4],
        "faithfulness": {"score": "logit"},
        "vs_control": versus_control(
            pd.DataFrame({"deletion_auc": [2.0, 2.1, 1.9]}), pd.DataFrame({"deletion_auc": [1.0, 1.1, 0.9]})
        ),
        "sanity": {"passed": False, "verdict": "FAILED: ..."},
    }
    text = " | ".join(entry_warnings(entry))
    assert "4x4 grid" in text and "does not beat the random control on deletion_auc (on logits)" in text
    assert "sanity check FAILED" in text
    assert entry_warnings({**entry, "is_control": True}) == []
    assert entry_warnings({"method": "gradcam", "grid": [8, 8]}) == []


def test_empty_maps_are_counted_and_left_out_of_border_figures():
    hm = np.zeros((3, 28, 28), np.float32)
    hm[0, 10:18, 10:18] = 1.0  # one map in the centre, two empty ones (argmax at (0, 0): the border)
    s = anatomy_summary(hm)
    assert s["n_empty"] == 2 and s["peaks_on_border"] == 0.0 and s["border_energy"] == 0.0
    (warning,) = anatomy_warnings(s, "gradcam")
    assert "2 of 3 maps are empty" in warning
    blank = anatomy_summary(np.zeros((2, 28, 28)))
    assert blank["border_energy"] is None and blank["peaks_on_border"] is None
    assert len(anatomy_warnings(blank, "gradcam")) == 1

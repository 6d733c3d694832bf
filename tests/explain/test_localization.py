"""Localization scores against hand-worked cases (every expected number is derived in a comment)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chestxai.explain.localization import (
    IOBB_THRESHOLDS,
    best_overlap,
    boxes_mask,
    energy_inside,
    heatmap_peak,
    iobb,
    iou,
    mask_overlap,
    point_box_distance,
    pointing_hit,
    score_item,
    summarize,
)


def test_iou_and_iobb_by_hand():
    # 10x10 boxes offset by 5 in x and y: intersection 5*5 = 25, union 100 + 100 - 25 = 175
    assert iou((0, 0, 10, 10), (5, 5, 10, 10)) == pytest.approx(25 / 175)
    # IoBB divides by the *predicted* box's area: 25 / 100
    assert iobb((0, 0, 10, 10), (5, 5, 10, 10)) == pytest.approx(0.25)
    # a small prediction inside a large GT box: IoBB 1 (all of it is on the lesion), IoU 4/100
    assert iobb((2, 2, 2, 2), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((2, 2, 2, 2), (0, 0, 10, 10)) == pytest.approx(0.04)
    # a large prediction around a small GT box: IoBB 4/100
    assert iobb((0, 0, 10, 10), (2, 2, 2, 2)) == pytest.approx(0.04)
    # touching edges share no area
    assert iou((0, 0, 5, 5), (5, 0, 5, 5)) == 0.0
    assert iobb((0, 0, 0, 5), (0, 0, 5, 5)) == 0.0  # a degenerate prediction scores 0, no division by 0


def test_pointing_game_by_hand():
    hm = np.zeros((20, 20), np.float32)
    hm[2, 2] = 1.0  # peak at row 2, col 2 -> pixel centre (2.5, 2.5)
    assert heatmap_peak(hm) == (2, 2)
    box = (5, 5, 5, 5)
    # distance from (2.5, 2.5) to the box corner (5, 5) = sqrt(2.5^2 + 2.5^2) = 3.536
    assert point_box_distance(2, 2, box) == pytest.approx(np.hypot(2.5, 2.5))
    assert not pointing_hit(hm, [box])
    assert not pointing_hit(hm, [box], tolerance=3.5)
    assert pointing_hit(hm, [box], tolerance=3.6)
    assert pointing_hit(hm, [(0, 0, 5, 5)])  # inside
    assert pointing_hit(hm, [box, (2, 2, 1, 1)])  # any box of the finding counts
    # pixel (2, 2) is the unit square [2, 3] x [2, 3]: the box (3, 0, 5, 5) starts at x = 3, the centre 2.5 is outside
    assert not pointing_hit(hm, [(3, 0, 5, 5)])
    assert pointing_hit(hm, [(3, 0, 5, 5)], tolerance=0.5)


def test_pointing_game_with_masks():
    hm = np.zeros((10, 10), np.float32)
    hm[0, 0] = 1
    mask = np.zeros((10, 10), bool)
    mask[0, 3] = True  # 3 pixels to the right of the peak
    assert not pointing_hit(hm, mask=mask)
    assert not pointing_hit(hm, mask=mask, tolerance=2.9)
    assert pointing_hit(hm, mask=mask, tolerance=3.0)
    mask[0, 0] = True
    assert pointing_hit(hm, mask=mask)
    assert not pointing_hit(hm, mask=np.zeros((10, 10), bool), tolerance=100)  # no GT: never a hit


def test_ties_take_the_first_maximum_in_row_major_order():
    hm = np.zeros((4, 4))
    hm[1, 3] = hm[3, 0] = 1
    assert heatmap_peak(hm) == (1, 3)


def test_energy_by_hand():
    hm = np.ones((10, 10))
    region = boxes_mask([(0, 0, 5, 5)], (10, 10))
    assert energy_inside(hm, region) == pytest.approx(0.25)  # 25 of 100 equal pixels
    hm[0, 0] = 76.0  # mass 99 + 76 = 175; inside 24 + 76 = 100
    assert energy_inside(hm, region) == pytest.approx(100 / 175)
    assert energy_inside(np.zeros((3, 3)), np.ones((3, 3), bool)) == 0.0


def test_boxes_mask_rasterises_pixel_centres():
    m = boxes_mask([(1, 2, 3, 4)], (10, 10))  # columns 1..3, rows 2..5
    assert m.sum() == 12
    assert m[2, 1] and m[5, 3] and not m[6, 3] and not m[2, 4]
    assert boxes_mask([(8, 8, 5, 5)], (10, 10)).sum() == 4  # clipped at the border


def test_mask_overlap_by_hand():
    gt = np.zeros((10, 10), bool)
    gt[0:4, 0:4] = True  # 16 pixels
    # prediction covers columns 2..5, rows 0..3 (16 pixels); overlap columns 2..3 = 8 pixels
    i, b = mask_overlap((2, 0, 4, 4), gt)
    assert i == pytest.approx(8 / 24)
    assert b == pytest.approx(8 / 16)


def test_best_overlap_takes_the_best_pair():
    preds = [(50, 50, 5, 5), (0, 0, 10, 10)]
    gts = [(5, 5, 10, 10), (100, 100, 2, 2)]
    assert best_overlap(preds, gts) == (pytest.approx(25 / 175), pytest.approx(0.25))
    assert best_overlap([], gts) == (0.0, 0.0)


def test_score_item_and_summary():
    hm = np.zeros((20, 20))
    hm[3, 3] = 1
    s = score_item(hm, [(0, 0, 10, 10)], gt_boxes=[(5, 5, 10, 10)])
    assert s == {"hit": 0.0, "iou": pytest.approx(25 / 175), "iobb": pytest.approx(0.25), "energy": 0.0}
    items = pd.DataFrame(
        {
            "finding": ["Mass", "Mass", "Nodule"],
            "hit": [1.0, 0.0, 1.0],
            "iou": [0.5, 0.1, 0.2],
            "iobb": [0.8, 0.1, 0.25],
            "energy": [0.6, 0.2, 0.4],
        }
    )
    out = summarize(items)
    assert out["overall"]["n"] == 3
    assert out["overall"]["pointing_game"] == pytest.approx(2 / 3)
    assert out["per_finding"]["Mass"]["pointing_game"] == pytest.approx(0.5)
    assert out["per_finding"]["Nodule"]["iobb"] == pytest.approx(0.25)
    # accuracy counts IoBB strictly above T (ChestX-ray8): 0.25 is not > 0.25
    assert out["overall"]["acc_iobb_0.25"] == pytest.approx(1 / 3)
    assert out["overall"]["acc_iobb_0.1"] == pytest.approx(2 / 3)
    assert set(f"acc_iobb_{t:g}" for t in IOBB_THRESHOLDS) <= set(out["overall"])
    assert out["mean_over_findings"]["pointing_game"] == pytest.approx((0.5 + 1.0) / 2)
    assert summarize(items.iloc[:0])["overall"] is None

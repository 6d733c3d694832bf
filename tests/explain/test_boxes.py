"""Boxes from heatmaps: thresholds (fraction of the maximum, Otsu) and connected components."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.explain.boxes import boxes_from_heatmap, otsu_threshold, threshold_heatmap


def test_otsu_splits_a_bimodal_histogram_between_the_modes():
    values = np.concatenate([np.full(100, 0.1), np.full(50, 0.9)])
    level = otsu_threshold(values)
    assert 0.1 < level <= 0.9
    assert (values >= level).sum() == 50
    rng = np.random.default_rng(0)
    separated = np.concatenate([rng.normal(0.2, 0.03, 500), rng.normal(0.7, 0.03, 500)])
    level = otsu_threshold(separated)
    assert separated[:500].max() < level <= separated[500:].min()  # anywhere in the gap is optimal


def test_otsu_matches_opencv_on_overlapping_modes():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.3, 0.1, 700), rng.normal(0.7, 0.1, 300)]).clip(0, 1)
    u8 = np.round(values * 255).astype(np.uint8)
    cv_level, _ = cv2.threshold(u8.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # OpenCV keeps pixels > its level; we keep pixels >= ours: the same partition
    assert np.array_equal(u8 > cv_level, u8 >= otsu_threshold(u8.astype(float)))
    assert otsu_threshold(np.full(10, 0.4)) == pytest.approx(0.4)  # constant input: no split


def test_threshold_is_a_fraction_of_the_maximum():
    hm = np.array([[0.0, 0.2, 0.4], [0.5, 0.8, 1.0]]) * 2  # maximum 2
    assert threshold_heatmap(hm, 0.5).tolist() == [[False, False, False], [True, True, True]]
    assert not threshold_heatmap(np.zeros((2, 2)), 0.5).any()
    with pytest.raises(ValueError, match="fraction"):
        threshold_heatmap(hm, 1.5)
    with pytest.raises(ValueError, match="otsu"):
        threshold_heatmap(hm, "median")


def test_two_components_give_two_boxes_hottest_first():
    hm = np.zeros((20, 30), np.float32)
    hm[2:5, 3:9] = 0.6  # 3 rows x 6 columns at x=3, y=2
    hm[10:18, 20:24] = 1.0  # 8 rows x 4 columns at x=20, y=10 (more mass)
    boxes = boxes_from_heatmap(hm, threshold=0.5)
    assert [b.as_tuple() for b in boxes] == [(20, 10, 4, 8), (3, 2, 6, 3)]
    total = 0.6 * 18 + 1.0 * 32
    assert boxes[0].score == pytest.approx(32 / total)
    assert [b.as_tuple() for b in boxes_from_heatmap(hm, threshold=0.7)] == [(20, 10, 4, 8)]
    assert len(boxes_from_heatmap(hm, max_boxes=1)) == 1
    # the 18-pixel component is 3% of the 600-pixel image: dropped at a 5% minimum
    assert len(boxes_from_heatmap(hm, min_area_fraction=0.05)) == 1
    assert boxes_from_heatmap(np.zeros((5, 5))) == []


def test_diagonal_neighbours_are_one_component():
    hm = np.zeros((5, 5))
    hm[1, 1] = hm[2, 2] = hm[3, 3] = 1
    assert [b.as_tuple() for b in boxes_from_heatmap(hm)] == [(1, 1, 3, 3)]


def test_otsu_boxes():
    hm = np.full((10, 10), 0.1)
    hm[4:7, 5:9] = 0.9
    assert [b.as_tuple() for b in boxes_from_heatmap(hm, threshold="otsu")] == [(5, 4, 4, 3)]

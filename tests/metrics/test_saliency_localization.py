"""Saliency localisation kernels against hand-worked cases (each expected number derived in a
comment), and three of them against Quantus 0.6's reference implementations on the same maps."""

from __future__ import annotations

from contextlib import nullcontext as _nothing

import numpy as np
import pytest

from chestxai.explain.localization import pointing_hit
from chestxai.metrics.saliency_localization import (
    CUTOFF_GRID,
    THRESHOLD_GRID,
    best_cutoff,
    mask_iou,
    normalise_map,
    otsu_mask,
    percentage_decrease,
    pixel_average_precision,
    relevance_mass,
    relevance_rank,
    threshold_mask,
    true_positive_iou,
    tune_probability_cutoff,
    tune_threshold,
)


def test_grids_are_chexlocalize_aranges():
    # float rounding makes their np.arange(0.2, .8, .1) end at 0.8000000000000003 (seven values);
    # np.arange(0, .9, .1) stops at 0.8
    np.testing.assert_allclose(THRESHOLD_GRID, np.arange(0.2, 0.8, 0.1))
    assert THRESHOLD_GRID[-1] == 0.8
    np.testing.assert_allclose(CUTOFF_GRID, np.arange(0, 0.9, 0.1))


def test_normalise_min_max_and_constant_map():
    # (h - 2) / (4 - 2): [2, 2.5, 3, 4] -> [0, 0.25, 0.5, 1]
    assert normalise_map(np.array([[2.0, 2.5, 3.0, 4.0]])) == pytest.approx(np.array([[0, 0.25, 0.5, 1.0]]))
    assert not normalise_map(np.full((3, 3), 0.7)).any()  # constant: no ranks, all zeros


def test_threshold_mask_is_strictly_above_the_normalised_value():
    # normalised [0, .25, .5, 1]: > 0.4 keeps the last two; > 0.5 keeps only 1.0 (strict)
    h = np.array([[2.0, 2.5, 3.0, 4.0]])
    assert threshold_mask(h, 0.4).tolist() == [[False, False, True, True]]
    assert threshold_mask(h, 0.5).tolist() == [[False, False, False, True]]


def test_otsu_block_ring_and_single_pixel():
    # a 2x2 hot block on a cold 6x6 map: Otsu splits 255 from 0, the filled contour is the block
    h = np.zeros((6, 6))
    h[1:3, 2:4] = 1.0
    assert np.array_equal(otsu_mask(h), h > 0)
    # a hot 5x5 ring around a cold centre: the contours are filled, so the hole is filled too
    ring = np.zeros((7, 7))
    ring[1:6, 1:6] = 1.0
    ring[3, 3] = 0.0
    expected = np.zeros((7, 7), bool)
    expected[1:6, 1:6] = True
    assert np.array_equal(otsu_mask(ring), expected)
    # one hot pixel is a single-point contour, which CheXlocalize drops: the mask is empty
    dot = np.zeros((5, 5))
    dot[2, 2] = 1.0
    assert not otsu_mask(dot).any()
    assert not otsu_mask(np.full((4, 4), 0.3)).any()  # constant map: empty


def test_mask_iou_and_true_positive_slice():
    pred = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[0, 1, 1, 1]], bool)
    # intersection 1 pixel, union 4
    assert mask_iou(pred, truth) == pytest.approx(0.25)
    empty = np.zeros((1, 4), bool)
    assert np.isnan(mask_iou(empty, empty))  # both empty: left out of mIoU
    assert mask_iou(empty, truth) == 0.0  # a missed positive counts 0
    assert mask_iou(pred, empty) == 0.0  # a negative with a drawn mask counts 0
    assert np.isnan(true_positive_iou(empty, truth)) and np.isnan(true_positive_iou(pred, empty))
    assert true_positive_iou(pred, truth) == pytest.approx(0.25)


def test_pixel_average_precision_by_hand_and_sklearn():
    from sklearn.metrics import average_precision_score

    h = np.array([[0.9, 0.8], [0.7, 0.1]])
    truth = np.array([[1, 0], [1, 0]], bool)
    # descending: 0.9 pos (P 1, R .5), 0.8 neg, 0.7 pos (P 2/3, R 1): AP = .5 * 1 + .5 * 2/3
    assert pixel_average_precision(h, truth) == pytest.approx(0.5 + 1 / 3)
    rng = np.random.default_rng(0)
    h2 = np.round(rng.random((9, 9)), 1)  # ties: tied pixels form one threshold, as scikit-learn
    t2 = rng.random((9, 9)) < 0.3
    assert pixel_average_precision(h2, t2) == pytest.approx(average_precision_score(t2.ravel(), h2.ravel()))
    assert np.isnan(pixel_average_precision(h, np.zeros((2, 2), bool)))


def test_relevance_mass_and_rank_by_hand():
    h = np.array([[1.0, 2.0], [3.0, 4.0]])
    # mass inside the top row: (1 + 2) / 10
    assert relevance_mass(h, np.array([[1, 1], [0, 0]], bool)) == pytest.approx(0.3)
    # K = 2: the two highest pixels are 4 (in the mask) and 3 (not): 1 / 2
    assert relevance_rank(h, np.array([[1, 0], [0, 1]], bool)) == pytest.approx(0.5)
    assert np.isnan(relevance_mass(h, np.zeros((2, 2), bool)))
    assert np.isnan(relevance_rank(h, np.zeros((2, 2), bool)))
    assert np.isnan(relevance_mass(np.zeros((2, 2)), np.ones((2, 2), bool)))  # no mass


def test_tune_threshold_first_best_on_true_positives():
    h = np.array([[0.0, 0.35, 0.55, 1.0]])
    truth = np.array([[0, 0, 1, 1]], bool)
    negative = np.zeros((1, 4), bool)
    # t .2/.3 keep {.35,.55,1}: IoU 2/3; t .4/.5 keep {.55,1}: 1; t .6/.7/.8 keep {1}: 1/2.
    # The negative's IoU is undefined on the true-positive slice: it does not count.
    best, mious = tune_threshold([h, h], [truth, negative])
    assert mious == pytest.approx([2 / 3, 2 / 3, 1, 1, 0.5, 0.5, 0.5])
    assert best == pytest.approx(0.4)  # first of the tied maxima
    best, mious = tune_threshold([h], [negative])  # no val positive: nothing to tune
    assert best is None and np.isnan(mious).all()


def test_best_cutoff_by_hand():
    # otsu IoUs: pos1 .5 (p .9), pos2 .2 (p .15), neg1 0 (p .35), neg2 0 (p .05)
    ious = np.array([0.5, 0.2, 0.0, 0.0])
    positive = np.array([True, True, False, False])
    p = np.array([0.9, 0.15, 0.35, 0.05])
    best, mious = best_cutoff(ious, positive, p)
    # c 0: mean(.5,.2,0,0) = .175; c .1: neg2 emptied (left out): mean(.5,.2,0) = .2333;
    # c .2/.3: pos2 emptied (0): mean(.5,0,0) = .1667; c >= .4: neg1 emptied: mean(.5,0) = .25
    assert mious == pytest.approx([0.175, 0.7 / 3, 0.5 / 3, 0.5 / 3, 0.25, 0.25, 0.25, 0.25, 0.25])
    assert best == pytest.approx(0.4)


def test_tune_probability_cutoff_from_masks():
    truth = np.array([[0, 1, 1, 0]], bool)
    hit = np.array([[0, 1, 1, 0]], bool)  # IoU 1 when kept
    false_alarm = np.array([[1, 0, 0, 0]], bool)  # on a negative: IoU 0 when kept
    # c 0: mean(1, 0) = .5; c .1 .. .3: the negative (p .25) still kept; c .3: p .25 < .3 -> emptied,
    # left out: mean(1) = 1. The positive (p .95) is kept throughout.
    best, mious = tune_probability_cutoff([hit, false_alarm], [truth, np.zeros((1, 4), bool)], [0.95, 0.25])
    assert mious == pytest.approx([0.5, 0.5, 0.5, 1, 1, 1, 1, 1, 1])
    assert best == pytest.approx(0.3)


def test_percentage_decrease():
    assert percentage_decrease(0.5, 0.2) == pytest.approx(60.0)  # 100 * (.5 - .2) / .5
    assert np.isnan(percentage_decrease(0.0, 0.2))
    assert percentage_decrease(np.array([0.5, 0.4]), np.array([0.25, 0.5])) == pytest.approx([50.0, -25.0])


def _quantus_batch(seed: int = 0, n: int = 7, size: int = 12):
    """Maps without ties (so every tie rule agrees) and rectangular masks: on even items around the
    map's peak (hits), on odd ones in a corner away from it (misses, mass and rank below 1); the
    last mask is empty."""
    rng = np.random.default_rng(seed)
    a = rng.random((n, 1, size, size))
    s = np.zeros((n, 1, size, size))
    for i in range(n - 1):
        r, c = np.unravel_index(np.argmax(a[i, 0]), (size, size))
        if i % 2:  # the quadrant diagonally opposite the peak
            r, c = (0 if r >= size // 2 else size - 5), (0 if c >= size // 2 else size - 5)
        else:
            r, c = max(r - 1, 0), max(c - 2, 0)
        s[i, 0, r : r + 4, c : c + 5] = 1
    x = rng.random((n, 1, size, size)).astype(np.float32)
    return x, a, s, np.zeros(n, int)


@pytest.mark.parametrize("name", ["PointingGame", "RelevanceMassAccuracy", "RelevanceRankAccuracy"])
def test_equal_to_quantus(name):
    quantus = pytest.importorskip("quantus", reason="quantus (dev extra) is the reference implementation")
    ours = {
        "PointingGame": lambda h, t: float(pointing_hit(h, mask=t)) if t.any() else np.nan,
        "RelevanceMassAccuracy": relevance_mass,
        "RelevanceRankAccuracy": relevance_rank,
    }[name]
    x, a, s, y = _quantus_batch()
    metric = getattr(quantus, name)(disable_warnings=True)
    with np.errstate(invalid="ignore"), pytest.warns(UserWarning) if name != "PointingGame" else _nothing():
        theirs = np.asarray(metric(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s), float)
    mine = np.array([ours(a[i, 0], s[i, 0].astype(bool)) for i in range(len(a))])
    # the empty mask: undefined for us; Quantus's pointing game stores NaN in a bool array (-> True)
    assert np.isnan(mine[-1])
    np.testing.assert_allclose(mine[:-1], theirs[:-1], rtol=0, atol=1e-6)
    assert len(set(np.round(mine[:-1], 6))) > 1  # hits and misses: the comparison can fail

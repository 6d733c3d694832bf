"""Deletion/insertion curves on a hand-checkable toy model; ROAD from pytorch-grad-cam, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_helpers import tiny_model

from chestxai.explain.faithfulness import (
    curve_auc,
    deletion_insertion,
    perturbation_curves,
    pixel_order,
    road_scores,
    untied,
)


def test_curve_auc_by_hand():
    assert curve_auc([1, 0]) == pytest.approx(0.5)
    assert curve_auc([1, 1, 1]) == pytest.approx(1.0)
    assert curve_auc([1, 0, 0, 0, 0]) == pytest.approx(0.125)  # one trapezoid of width 1/4, mean height 1/2
    with pytest.raises(ValueError):
        curve_auc([1.0])


def test_pixel_order_ranks_hottest_first():
    assert pixel_order(np.array([[0.1, 0.9], [0.5, 0.9]])).tolist() == [[3, 0], [2, 1]]


def test_ties_are_broken_at_random_with_a_seed_and_never_reorder_distinct_values():
    hm = np.zeros((8, 8))
    hm[0, 0] = 1.0
    a = pixel_order(hm, np.random.default_rng(0))
    assert a[0, 0] == 0 and sorted(a.ravel()) == list(range(64))
    assert np.array_equal(a, pixel_order(hm, np.random.default_rng(0)))
    assert not np.array_equal(a, pixel_order(hm))  # row-major order is not what random ties give
    flat = untied(hm[None], seed=0)[0]
    assert flat[0, 0] == 1.0 and len(np.unique(flat)) == 64  # ROAD's percentiles now cut exact shares
    assert flat.min() == 0.0


def _region_score(x: torch.Tensor) -> torch.Tensor:
    """Toy model: the mean of the top-left 2x2 pixels (the only evidence)."""
    return x[:, 0, :2, :2].mean(dim=(1, 2))[:, None]


def test_deletion_and_insertion_by_hand():
    image = torch.ones(1, 1, 4, 4)
    baseline = torch.zeros(1, 1, 4, 4)
    faithful = np.zeros((1, 4, 4))
    faithful[0, :2, :2] = 1.0  # hot exactly on the evidence
    # 4 steps of 4 pixels: the first step removes the 2x2 evidence -> curve 1, 0, 0, 0, 0
    deletion = perturbation_curves(_region_score, image, baseline, faithful, [0], steps=4)
    assert deletion[0].tolist() == [1, 0, 0, 0, 0]
    assert curve_auc(deletion[0]) == pytest.approx(0.125)
    # the opposite map removes the evidence last -> 1, 1, 1, 1, 0
    unfaithful = 1.0 - faithful
    late = perturbation_curves(_region_score, image, baseline, unfaithful, [0], steps=4)
    assert late[0].tolist() == [1, 1, 1, 1, 0]
    assert curve_auc(late[0]) == pytest.approx(0.875)
    # insertion runs the other way: 0, 1, 1, 1, 1 for the faithful map
    insertion = perturbation_curves(_region_score, baseline, image, faithful, [0], steps=4)
    assert insertion[0].tolist() == [0, 1, 1, 1, 1]
    # chunking inputs differently changes nothing
    again = perturbation_curves(_region_score, image, baseline, faithful, [0], steps=4, batch_size=2)
    assert np.array_equal(again, deletion)


def test_heatmaps_must_match_the_images():
    with pytest.raises(ValueError, match="resize"):
        perturbation_curves(
            _region_score, torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), np.zeros((1, 2, 2)), [0]
        )


def test_model_faithfulness_and_road_are_seeded_and_leave_global_state_alone():
    torch.manual_seed(0)
    model = tiny_model(num_labels=2, task="multilabel").eval()
    x = torch.randn(2, 1, 32, 32)
    hm = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    out = deletion_insertion(model, x, hm, [0, 1], steps=5)
    assert out["deletion_auc"].shape == (2,) and out["deletion_curve"].shape == (2, 6)
    assert np.all((out["insertion_curve"] >= 0) & (out["insertion_curve"] <= 1))
    state = torch.get_rng_state()
    a = road_scores(model, x, hm, [0, 1], "multilabel", percentiles=(30, 70), seed=1)
    b = road_scores(model, x, hm, [0, 1], "multilabel", percentiles=(30, 70), seed=1)
    assert torch.equal(state, torch.get_rng_state())
    assert a.shape == (2,) and np.array_equal(a, b)

"""Losses on NaN (unknown) targets, against values worked out by hand (issue 9, weaker: a plain
mean in masked_bce, which counts NaN labels as negatives, used to pass the whole suite)."""

from __future__ import annotations

import math

import pytest
import torch

from chestxai.train.losses import masked_bce, multiclass_ce, task_loss

NAN = float("nan")
LOGITS = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
TARGET = torch.tensor([[1.0, NAN], [0.0, 1.0]])
LOG2, LOG1PE = math.log(2.0), math.log1p(math.e)  # -log sigmoid(0), -log sigmoid(-1) = -log(1 - sigmoid(1))


def test_masked_bce_averages_over_known_entries_only():
    # known entries: (y=1, z=0) -> log 2; (y=0, z=1) -> log(1+e); (y=1, z=-1) -> log(1+e)
    assert masked_bce(LOGITS, TARGET).item() == pytest.approx((LOG2 + 2 * LOG1PE) / 3, abs=1e-6)
    # a plain mean would add (y=0, z=2) -> log(1+e^2) and divide by 4: 1.3617 instead of 1.1065
    assert masked_bce(LOGITS, TARGET).item() != pytest.approx((LOG2 + 2 * LOG1PE + math.log1p(math.e**2)) / 4)


def test_masked_bce_with_pos_weight_and_smoothing():
    pw = torch.tensor([2.0, 1.0])
    assert masked_bce(LOGITS, TARGET, pw).item() == pytest.approx((2 * LOG2 + 2 * LOG1PE) / 3, abs=1e-6)
    s = 0.2  # targets 1 -> 0.9, 0 -> 0.1
    sig1 = 1 / (1 + math.exp(-1.0))
    expected = (
        LOG2  # z=0: -(0.9 + 0.1) log 0.5
        - (0.1 * math.log(sig1) + 0.9 * math.log(1 - sig1))  # y=0 -> 0.1, z=1
        - (0.9 * math.log(1 - sig1) + 0.1 * math.log(sig1))  # y=1 -> 0.9, z=-1: sigmoid(-1) = 1 - sigmoid(1)
    ) / 3
    assert masked_bce(LOGITS, TARGET, label_smoothing=s).item() == pytest.approx(expected, abs=1e-6)


def test_unknown_targets_get_no_gradient_and_all_unknown_is_zero():
    z = LOGITS.clone().requires_grad_(True)
    masked_bce(z, TARGET).backward()
    assert z.grad[0, 1] == 0 and (z.grad.flatten()[[0, 2, 3]] != 0).all()
    z = LOGITS.clone().requires_grad_(True)
    loss = masked_bce(z, torch.full_like(TARGET, NAN))
    loss.backward()
    assert loss.item() == 0 and (z.grad == 0).all()


def test_multiclass_ce_skips_rows_with_an_unknown_class():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 3.0]])
    target = torch.tensor([[1.0, 0.0, 0.0], [NAN, NAN, NAN], [0.0, 0.0, 1.0]])
    row0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    row2 = -math.log(math.exp(3) / (math.exp(3) + 2))
    assert multiclass_ce(logits, target).item() == pytest.approx((row0 + row2) / 2, abs=1e-6)
    assert task_loss("multiclass", logits, target, None, 0.0).item() == pytest.approx(
        (row0 + row2) / 2, abs=1e-6
    )
    assert multiclass_ce(logits, torch.full_like(target, NAN)).item() == 0
    assert task_loss("multilabel", LOGITS, TARGET, None, 0.0).item() == pytest.approx(
        (LOG2 + 2 * LOG1PE) / 3, abs=1e-6
    )

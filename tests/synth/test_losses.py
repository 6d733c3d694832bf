"""The LSGAN, cycle and identity losses against values computed by hand on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from chestxai.synth.losses import (
    IDENTITY_WEIGHT,
    LAMBDA_CYCLE,
    cycle_loss,
    discriminator_loss,
    identity_loss,
    lsgan_loss,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def test_lsgan_is_the_mean_squared_distance_to_1_or_0():
    scores = t(0.5, -1.0)
    assert lsgan_loss(scores, True).item() == pytest.approx(((0.5 - 1) ** 2 + (-1 - 1) ** 2) / 2)  # 2.125
    assert lsgan_loss(scores, False).item() == pytest.approx((0.5**2 + 1.0**2) / 2)  # 0.625


def test_discriminator_loss_is_half_the_sum_of_real_and_fake_terms():
    # real scores (1, 0): ((1-1)^2 + (0-1)^2) / 2 = 0.5; fake scores (0.5, 0): (0.25 + 0) / 2 = 0.125
    assert discriminator_loss(t(1.0, 0.0), t(0.5, 0.0)).item() == pytest.approx(0.5 * (0.5 + 0.125))


def test_cycle_and_identity_are_weighted_l1():
    rec, x = t(0.1, 0.5, -0.3), t(0.0, 0.0, 0.0)
    mean_abs = (0.1 + 0.5 + 0.3) / 3
    assert LAMBDA_CYCLE == 10 and IDENTITY_WEIGHT == 0.5
    assert cycle_loss(rec, x).item() == pytest.approx(10 * mean_abs)
    assert identity_loss(rec, x).item() == pytest.approx(0.5 * 10 * mean_abs)
    assert cycle_loss(rec, x, weight=2.0).item() == pytest.approx(2 * mean_abs)
    assert identity_loss(rec, x, weight=0.0).item() == 0.0


def test_losses_are_float32_under_half_precision_inputs():
    scores = t(0.25, 0.75).to(torch.bfloat16)
    assert lsgan_loss(scores, True).dtype == torch.float32
    assert lsgan_loss(scores, True).item() == pytest.approx((0.75**2 + 0.25**2) / 2)

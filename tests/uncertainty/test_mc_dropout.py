"""MC dropout: only dropout samples, batch norm untouched, seeded, clear errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from chestxai.models import create_model
from chestxai.uncertainty import predict_with_uncertainty
from chestxai.uncertainty.mc_dropout import dropout_in_head_only, mc_dropout_samples

from .conftest import energy_model


def _model(p: float) -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet18", 1, "binary", dropout=p, input_size=32).eval()


def _x(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_dropout_p_zero_gives_zero_uncertainty():
    model = _model(0.0)
    out = predict_with_uncertainty(model, _x(), passes=10, dropout=0.0)
    for key in ("std", "mutual_information"):
        assert np.allclose(out[key], 0.0, atol=1e-12), key
    assert np.allclose(out["mean"], out["deterministic"], atol=1e-6)
    assert isinstance(model.head.dropout, nn.Identity)  # the inserted layer is gone again
    assert "inserted at inference" in str(out["dropout_source"])


def test_batch_norm_buffers_and_modes_are_unchanged_by_an_mc_run():
    model = _model(0.5)
    x = _x() * 3 + 1  # far from the running statistics: train-mode BN would move them
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    out = predict_with_uncertainty(model, x, passes=20)
    assert out["std"].max() > 0  # dropout did sample
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == modes
    # the check can fail: the classic bug (model.train()) does move the buffers
    buggy = copy.deepcopy(model).train()
    with torch.no_grad():
        buggy(x)
    assert not torch.equal(
        buggy.state_dict()["backbone.bn1.running_mean"], before["backbone.bn1.running_mean"]
    )


def test_same_seed_same_outputs_other_seed_other_outputs():
    model = _model(0.5)
    a = predict_with_uncertainty(model, _x(), passes=8, seed=3)
    b = predict_with_uncertainty(model, _x(), passes=8, seed=3)
    c = predict_with_uncertainty(model, _x(), passes=8, seed=4)
    assert np.array_equal(a["samples"], b["samples"])
    assert not np.array_equal(a["samples"], c["samples"])
    state = torch.random.get_rng_state()
    predict_with_uncertainty(model, _x(), passes=2, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched


def test_head_only_dropout_shares_the_backbone_and_backbone_dropout_runs_full_passes():
    model = _model(0.5)
    assert dropout_in_head_only(model)
    feats = []
    h2 = model.backbone.layer4.register_forward_hook(lambda *a: feats.append(1))
    try:
        mc_dropout_samples(model, _x(4), passes=30)
    finally:
        h2.remove()
    assert len(feats) == 1  # one backbone forward for 30 passes

    full = energy_model(0.0)
    full.backbone.drop = nn.Dropout(0.5)
    full.backbone.forward_features = lambda x: full.backbone.drop(full.backbone.bn(full.backbone.conv(x)))
    assert not dropout_in_head_only(full)
    samples, _ = mc_dropout_samples(full, 0.05 * _x(3), passes=5)
    assert samples.shape == (5, 3, 1) and samples.std(0).max() > 0
    assert not full.backbone.bn.training


def test_noisy_half_of_the_inputs_ranks_on_top():
    """Known answer: the energy model's logit varies under head dropout in proportion to the
    input's energy, so the noisy half must be the most uncertain half."""
    g = torch.Generator().manual_seed(1)
    clean = 0.05 * torch.randn(20, 1, 16, 16, generator=g)
    noisy = 2.0 * torch.randn(20, 1, 16, 16, generator=g)
    x = torch.cat([clean, noisy])
    out = predict_with_uncertainty(energy_model(0.5), x, passes=40)
    top = np.argsort(-out["std"][:, 0])[:20]
    assert set(top.tolist()) == set(range(20, 40))


def test_bad_requests_fail_before_any_forward():
    model = _model(0.0)
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match=r"model\.dropout.*--dropout"):
        predict_with_uncertainty(model, _x(), passes=5)
    with pytest.raises(ValueError, match="--passes"):
        predict_with_uncertainty(_model(0.5), _x(), passes=0)
    with pytest.raises(ValueError, match="--dropout must be in"):
        predict_with_uncertainty(model, _x(), dropout=1.5)
    with pytest.raises(ValueError, match="preprocess="):
        predict_with_uncertainty(model, _x(), method="tta")
    with pytest.raises(ValueError, match="unknown uncertainty method"):
        predict_with_uncertainty(model, _x(), method="bayes")
    assert calls == []

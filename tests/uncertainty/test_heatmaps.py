"""Uncertainty heatmaps: per-pixel mean/std of Grad-CAM over the method's samples."""

from __future__ import annotations

import numpy as np
import torch

from chestxai.models import create_model
from chestxai.uncertainty.heatmaps import ensemble_cams, mc_dropout_cams, tta_cams, write_heatmap_figure

PRE = {"size": 32, "mean": 0.5, "std": 0.25}


def _model(p: float, seed: int = 0):
    torch.manual_seed(seed)
    return create_model("resnet18", 1, "binary", dropout=p, input_size=32).eval()


def _x():
    return torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def test_mc_dropout_heatmaps_vary_only_with_dropout_and_leave_batch_norm_alone():
    model = _model(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mean, std = mc_dropout_cams(model, _x(), [0, 0], passes=6, seed=0)
    assert mean.shape == std.shape == (2, 32, 32) and std.max() > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.modules())
    same = mc_dropout_cams(model, _x(), [0, 0], passes=6, seed=0)
    assert np.array_equal(same[1], std)
    _, zero = mc_dropout_cams(_model(0.0), _x(), [0, 0], passes=4, dropout=0.0)
    assert np.allclose(zero, 0.0, atol=1e-6)


def test_tta_and_ensemble_heatmaps(tmp_path):
    model = _model(0.0)
    mean, std = tta_cams(model, _x(), PRE, [0, 0], passes=4, seed=0, draws=np.array([5, 9]))
    assert mean.shape == (2, 32, 32) and std.max() > 0 and np.isfinite(mean).all()
    m2, s2 = ensemble_cams([model, _model(0.0, seed=1)], _x(), [0, 0], [0.5, 0.5])
    assert s2.max() > 0
    info = write_heatmap_figure(np.zeros((32, 32), np.uint8), m2[0], s2[0], tmp_path / "h.png")
    assert (tmp_path / "h.png").is_file() and info["std_max"] == float(s2[0].max())

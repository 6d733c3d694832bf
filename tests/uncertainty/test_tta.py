"""TTA: the training augmentation family, seeded and keyed, and its inverse for heatmaps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from chestxai.data.augment import AugmentConfig, apply_params
from chestxai.models import create_model
from chestxai.uncertainty.tta import affine_theta, tta_params, tta_samples, unwarp

PRE = {"size": 32, "mean": 0.5, "std": 0.25}


def _geometry_only(params: torch.Tensor) -> torch.Tensor:
    p = params.clone()
    p[:, 5], p[:, 6] = 0.0, 1.0  # no brightness shift, contrast 1
    return p


def test_affine_theta_is_the_warp_of_apply_params():
    params = _geometry_only(tta_params(1, 5, seed=3)[0])
    x = torch.rand(5, 1, 32, 32)
    grid = F.affine_grid(affine_theta(params), list(x.shape), align_corners=False)
    mine = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.allclose(mine.clamp(0, 1), apply_params(x, params), atol=1e-5)


def test_unwarp_maps_a_view_back_onto_the_image():
    params = _geometry_only(tta_params(1, 4, seed=0, config=AugmentConfig(rotate=10, translate=0.08))[0])
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    img = (0.3 + 0.5 * xx * yy).expand(4, 1, 32, 32).contiguous()  # smooth, so resampling is exact-ish
    view = apply_params(img, params)
    back, cover = unwarp(view[:, 0].numpy(), params)
    inside = cover > 0.99
    assert inside.mean() > 0.7
    assert np.abs(back[inside] - img[:, 0].numpy()[inside]).max() < 0.03


def test_views_are_keyed_by_position_not_by_batch():
    full = tta_params(3, 6, seed=1)
    part = tta_params(3, 2, seed=1, draw_offset=4)
    assert torch.equal(full[:, 4:], part)
    assert not torch.equal(tta_params(3, 6, seed=2), full)
    assert (full[..., 4] == 1).all()  # no horizontal flip by default


def test_tta_samples_are_seeded_and_vary():
    torch.manual_seed(0)
    model = create_model("resnet18", 1, "binary", input_size=32).eval()
    x = (torch.rand(3, 1, 32, 32) - 0.5) / 0.25
    a = tta_samples(model, x, PRE, passes=6, seed=0)
    b = tta_samples(model, x, PRE, passes=6, seed=0)
    assert a.shape == (6, 3, 1) and torch.equal(a, b) and a.std(0).max() > 0
    assert not model.training

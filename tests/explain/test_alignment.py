"""Heatmap alignment: a strided CNN's cells sit over pixels ``s * i``, not the ``(i + 0.5) s - 0.5`` a
bilinear resize assumes; the measured shift is that difference, ViTs and the control are left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chestxai.explain import Explainer
from chestxai.explain.alignment import grid_shift, shift_maps
from chestxai.explain.layers import resolve_layer
from chestxai.models import create_model


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return create_model("resnet18", num_labels=1, task="binary", input_size=64).eval()


@pytest.mark.parametrize(("layer", "stride"), [("layer1", 4), ("layer2", 8), ("layer3", 16)])
def test_resnet_stages_are_drawn_half_a_cell_minus_half_a_pixel_too_far_down_right(resnet, layer, stride):
    """The arithmetic of 'same'-padded stride-2 convolutions: shift -(s - 1) / 2 on both axes."""
    _, module = resolve_layer(resnet, layer)
    assert grid_shift(resnet, module, (1, 64, 64), "cpu") == (-(stride - 1) / 2, -(stride - 1) / 2)


def test_the_probe_leaves_the_model_as_it_was(resnet):
    resnet.train()
    flags = [p.requires_grad for p in resnet.parameters()]
    grid_shift(resnet, resolve_layer(resnet, "layer2")[1], (1, 64, 64), "cpu")
    assert resnet.training and [p.requires_grad for p in resnet.parameters()] == flags
    assert sum(len(m._forward_hooks) for m in resnet.modules()) == 0
    resnet.eval()


def test_vit_maps_and_the_random_control_are_not_moved(resnet):
    vit = create_model("vit_tiny", num_labels=1, task="binary", input_size=224).eval()
    assert Explainer(vit, "gradcam").shift_for(torch.zeros(1, 1, 224, 224)) == (0.0, 0.0)
    assert Explainer(resnet, "random", layer="layer2").shift_for(torch.zeros(1, 1, 64, 64)) == (0.0, 0.0)
    assert Explainer(resnet, "gradcam", layer="layer2", align=False).shift_for(torch.zeros(1, 1, 64, 64)) == (
        0,
        0,
    )


def test_shift_maps_moves_a_peak_and_keeps_the_unit_range():
    maps = np.zeros((1, 32, 32), np.float32)
    maps[0, 20, 12] = 1.0
    moved = shift_maps(maps, (-4.0, 3.0))
    assert np.unravel_index(moved[0].argmax(), (32, 32)) == (16, 15)
    assert moved.min() == 0.0 and moved.max() == pytest.approx(1.0)
    assert shift_maps(maps, (0.0, 0.0)) is maps

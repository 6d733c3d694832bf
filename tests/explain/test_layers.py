"""Target layers: found for every registered model, overridable by name, ViT tokens folded by the grid."""

from __future__ import annotations

import pytest
import timm
import torch

from chestxai.explain import Explainer, LayerNotFoundError, find_target_layer
from chestxai.explain.layers import candidate_layers, layer_grid
from chestxai.explain.reshape import TokenGridReshape, token_reshape_for
from chestxai.models import create_model, list_models

SIZE = 32  # the smallest input every registered model takes: fast, and enough to check shapes


def _hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(m._backward_pre_hooks)
        for m in model.modules()
    )


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_gets_a_layer_and_right_sized_heatmaps(name):
    torch.manual_seed(0)
    model = create_model(name, num_labels=2, task="multilabel", input_size=SIZE)
    flags = [p.requires_grad for p in model.parameters()]
    explainer = Explainer(model, "gradcam")
    if model.family == "vit":
        assert explainer.layer_name.endswith(
            ".norm1"
        )  # class-token pooling: the last block's attention input
    else:
        assert explainer.layer_name.startswith("backbone.")
    x = torch.randn(2, 1, SIZE, SIZE)
    heat = explainer.explain(x, [0, 1])
    assert heat.shape == (2, SIZE, SIZE)
    assert heat.dtype == "float32" and heat.min() >= 0 and heat.max() <= 1
    assert _hooks(model) == 0, "explanation hooks left on the model"
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters()), "explaining must not fill weight gradients"


def test_the_automatic_layer_is_the_final_feature_map_for_cnns():
    model = create_model("resnet18", num_labels=1, task="binary", input_size=224)
    assert find_target_layer(model) == "backbone.layer4.1"  # ResNet's last block, as people pick it
    model = create_model("densenet121", num_labels=1, task="binary", input_size=224)
    assert find_target_layer(model) == "backbone.features.norm5"


def test_tiny_inputs_use_the_deepest_map_of_at_least_7x7():
    """A 28-px ResNet-18 ends in a 1x1 map (a uniform heatmap); layer2 is 4x4, layer1 7x7."""
    model = create_model("resnet18", num_labels=1, task="binary", input_size=28)
    assert find_target_layer(model) == "backbone.layer1.1"
    assert layer_grid(model, "backbone.layer1.1") == (7, 7)
    assert layer_grid(model, "layer2") == (4, 4)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    heat = Explainer(model, "gradcam").explain(x, [0] * 4)
    # an untrained model's Grad-CAM may be all zero (ReLU) on some images; a 1x1 map is uniform on all
    assert heat.shape == (4, 28, 28) and (heat.reshape(4, -1).std(axis=1) > 0).any()


def test_layer_by_dotted_name_relative_or_full():
    model = create_model("resnet18", num_labels=2, task="multilabel", input_size=64)
    for name in ("layer3", "backbone.layer3"):
        explainer = Explainer(model, "gradcam", layer=name)
        assert explainer.layer_name == "backbone.layer3"
        assert explainer.explain(torch.randn(1, 1, 64, 64), [1]).shape == (1, 64, 64)
    assert _hooks(model) == 0


def test_unknown_layer_lists_candidates():
    model = create_model("resnet18", num_labels=2, task="multilabel", input_size=SIZE)
    with pytest.raises(LayerNotFoundError) as err:
        Explainer(model, "gradcam", layer="backbone.layer5")
    msg = str(err.value)
    assert "backbone.layer5" in msg and "backbone.layer4" in msg and "spatial feature maps" in msg
    assert "--layer" in msg
    assert _hooks(model) == 0


def test_token_grid_reshape_orders_tokens_row_major():
    b, h, w, c, prefix = 2, 3, 4, 5, 1
    tokens = torch.arange(b * (prefix + h * w) * c, dtype=torch.float32).reshape(b, prefix + h * w, c)
    grid = TokenGridReshape(h, w, prefix)(tokens)
    assert grid.shape == (b, c, h, w)
    # patch token k (after the prefix) sits at row k // w, column k % w
    k = 6
    assert torch.equal(grid[:, :, k // w, k % w], tokens[:, prefix + k, :])
    with pytest.raises(ValueError, match="input size"):
        TokenGridReshape(2, 2, 1)(tokens)


@pytest.mark.parametrize("size,grid", [(32, 2), (48, 3), (64, 4)])
def test_vit_reshape_comes_from_the_patch_grid(size, grid):
    model = create_model("vit_tiny", num_labels=2, task="multilabel", input_size=size)
    reshape = token_reshape_for(model.backbone)
    assert (reshape.height, reshape.width, reshape.num_prefix_tokens) == (grid, grid, 1)
    assert Explainer(model, "gradcam").explain(torch.randn(1, 1, size, size), [0]).shape == (1, size, size)


def test_vit_prefix_tokens_are_read_from_the_model():
    backbone = timm.create_model("vit_tiny_patch16_224", img_size=32, in_chans=1, num_classes=0, reg_tokens=4)
    reshape = token_reshape_for(backbone)
    assert reshape.num_prefix_tokens == 5  # class token + 4 register tokens
    assert (reshape.height, reshape.width) == (2, 2)
    with pytest.raises(ValueError, match="patch_embed"):
        token_reshape_for(torch.nn.Linear(2, 2))


def test_candidate_layers_are_the_last_stage_at_each_resolution():
    model = create_model("resnet18", num_labels=1, task="binary", input_size=64)
    names = candidate_layers(model)
    assert names[-4:] == ["backbone.layer1", "backbone.layer2", "backbone.layer3", "backbone.layer4.1"]
    assert [layer_grid(model, n) for n in names[-4:]] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert candidate_layers(model, min_side=4)[-1] == "backbone.layer3"

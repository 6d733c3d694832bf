"""Every registered model trains one step on a tiny 1-channel batch, for every head and task.

Parametrised over the registry, so a new architecture is under test as soon as it is registered.
"""

from __future__ import annotations

import pytest
import torch

from chestxai.models import create_model, list_models
from chestxai.models.heads import HEADS, Head, list_heads
from chestxai.models.registry import MODELS
from chestxai.train.losses import task_loss

TASKS = {"binary": 1, "multiclass": 4, "multilabel": 3}


def cases():
    """(model, head, task): every registered model x every registered head it supports, once; tasks
    rotate so each head meets every task. A new model or head file is under test at once."""
    i = 0
    for name in list_models():
        for head in list_heads():
            if MODELS.get(name).family not in HEADS.get(head).families:
                continue
            yield name, head, list(TASKS)[i % len(TASKS)]
            i += 1


@pytest.mark.parametrize("name,head,task", list(cases()))
def test_model_trains_one_step(name: str, head: str, task: str) -> None:
    torch.manual_seed(0)
    size = max(MODELS.get(name).min_size, 32)
    n = TASKS[task]
    model = create_model(name, n, task, head=head, dropout=0.1, aux_outputs=2, input_size=size)
    model.train()
    x = torch.randn(2, 1, size, size)
    y = torch.zeros(2, n)
    y[0, 0] = 1
    y[1, n - 1] = 1
    logits, aux = model.forward_multitask(x)
    assert logits.shape == (2, n), (task, logits.shape)
    assert aux is not None and aux.shape == (2, 2)
    assert model(x).shape == (2, n)
    loss = task_loss(task, logits, y, None, 0.0) + torch.nn.functional.cross_entropy(
        aux, torch.tensor([0, 1])
    )
    assert torch.isfinite(loss)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    opt.zero_grad()
    loss.backward()
    no_grad = [k for k, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}/{head}/{task}: parameters without gradient: {no_grad[:5]}"
    opt.step()
    probs = model.probabilities(logits.detach())
    if task == "multiclass":
        assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
    assert ((probs >= 0) & (probs <= 1)).all()


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="resnet18") as info:
        create_model("resnet19", 1, "binary")
    assert "did you mean 'resnet18'" in str(info.value)


def test_binary_needs_one_output() -> None:
    with pytest.raises(ValueError, match="one output"):
        create_model("resnet18", 2, "binary")


def test_too_small_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 32 px"):
        create_model("densenet121", 1, "binary", input_size=28)


def test_freeze_backbone_trains_head_only() -> None:
    model = create_model("mobilenetv2", 1, "binary", input_size=32, freeze_backbone=True)
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(k.startswith("head.") for k in trainable)


def test_pcam_probability_maps_shape() -> None:
    model = create_model("resnet18", 3, "multilabel", head="pcam", input_size=64).eval()
    with torch.no_grad():
        maps = model.head.probability_maps(model.features(torch.randn(1, 1, 64, 64)))
    assert maps.shape == (1, 3, 2, 2)
    assert ((maps >= 0) & (maps <= 1)).all()


def test_heads_are_a_registry_with_helpful_errors() -> None:
    assert {"pooled", "pcam"} <= set(list_heads())
    with pytest.raises(KeyError, match="did you mean 'pcam'") as info:
        create_model("resnet18", 1, "binary", head="pcamm")
    assert "pooled" in str(info.value)
    with pytest.raises(ValueError, match="head='pooled'"):
        create_model("vit_tiny", 2, "multilabel", head="pcam", input_size=32)


def test_a_registered_head_needs_no_edit_elsewhere(monkeypatch) -> None:
    """Issue 8: a new head is one class registered in one file; create_model and checkpoints use it
    by name with no list to edit (here registered for the test only)."""

    class MaxHead(Head):
        consumes = "feature_map"
        families = ("cnn",)

        def __init__(self, channels: int, num_outputs: int, dropout: float = 0.0):
            super().__init__()
            self.fc = torch.nn.Linear(channels, num_outputs)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.fc(features.amax(dim=(2, 3)))

    list_heads()  # load the package's own heads first
    monkeypatch.setitem(HEADS._items, "max", MaxHead)
    model = create_model("resnet18", 3, "multilabel", head="max", input_size=32, aux_outputs=2).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        logits, aux = model.forward_multitask(x)
        expected = model.head.fc(model.features(x).amax(dim=(2, 3)))
    assert torch.allclose(logits, expected) and aux.shape == (2, 2)
    assert model.config["head"] == "max"

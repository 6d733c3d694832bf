"""Every registered model trains one step on a tiny 1-channel batch, for every head and task.

Parametrised over the registry, so a new architecture is under test as soon as it is registered.
"""

from __future__ import annotations

import pytest
import torch

from chestxai.models import create_model, list_models
from chestxai.models.registry import MODELS
from chestxai.train.losses import task_loss

TASKS = {"binary": 1, "multiclass": 4, "multilabel": 3}


def cases():
    """(model, head, task): every model x head once; tasks rotate so each head meets every task."""
    i = 0
    for name in list_models():
        for head in ("pooled", "pcam"):
            if head == "pcam" and MODELS.get(name).family != "cnn":
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
    assert "Did you mean 'resnet18'" in str(info.value)


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

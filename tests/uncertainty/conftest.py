"""Uncertainty fixtures: tiny run directories whose model has head dropout (written by the real
checkpoint writer), and a tiny model whose dropout variance grows with input noise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from chestxai.models import create_model
from chestxai.models.checkpoint import read_checkpoint, save_atomic
from chestxai.models.classifier import ChestClassifier
from chestxai.testing import write_tiny_run


def with_dropout(run: Path, p: float = 0.3, seed: int = 0, **changes) -> Path:
    """Replace ``run``'s checkpoint by a seeded (untrained) resnet18 with head dropout ``p``;
    ``changes`` overwrite checkpoint keys (e.g. ``preprocess=``)."""
    path = Path(run) / "checkpoint.pt"
    ckpt = read_checkpoint(path)
    kwargs = dict(ckpt["model"])
    kwargs["dropout"] = p
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(**{k: v for k, v in kwargs.items() if k != "freeze_backbone"})
    ckpt.update(model=kwargs, state_dict=model.state_dict(), **changes)
    save_atomic(ckpt, path)
    return Path(run)


def tiny_dropout_run(root: Path, p: float = 0.3, seed: int = 0, **kwargs) -> tuple[Path, Path]:
    run, cache = write_tiny_run(root, seed=seed, **kwargs)
    return with_dropout(run, p, seed), cache


@pytest.fixture
def dropout_run(tmp_path):
    return tiny_dropout_run(tmp_path / "a")


class EnergyBackbone(nn.Module):
    """A fixed "backbone" whose pooled features scale with the input's energy: a noisy image gives
    large features, a flat one small features (so head dropout varies the logit more)."""

    num_features = 8

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(-1, 1, 72).view(8, 1, 3, 3))

    def forward_features(self, x):
        return self.bn(self.conv(x))

    def forward_head(self, x, pre_logits: bool = True):
        return (x**2).mean(dim=(2, 3))


def energy_model(p: float = 0.5) -> ChestClassifier:
    model = ChestClassifier(EnergyBackbone(), "cnn", 1, "binary", "pooled", dropout=p)
    with torch.no_grad():
        model.head.fc.weight.fill_(0.02)  # keeps the noisy logits off the sigmoid's flat tails
        model.head.fc.bias.fill_(0.0)
    return model.eval()

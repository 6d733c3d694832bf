"""What the torchxrayvision tests share: weights made distinctive, so a mis-mapped tensor shows."""

from __future__ import annotations

import torch
from torch import nn


def randomise_statistics(model: nn.Module, linear_bias: bool = False) -> nn.Module:
    """Non-trivial batch-norm running statistics and scales (and, with ``linear_bias``, classifier
    biases) drawn from a fixed seed; returns ``model``."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 1.5, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
        elif linear_bias and isinstance(m, nn.Linear):
            m.bias.data.uniform_(-2, 2, generator=gen)
    return model

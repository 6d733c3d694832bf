"""The default head: the backbone's own global pooling, optional dropout, one linear layer.

Dropout stays a module (not a functional call) so Monte Carlo dropout can switch it on at
inference. :class:`AuxHead` is the same layer for a multi-task model's auxiliary output.
"""

from __future__ import annotations

import torch
from torch import nn

from chestxai.models.heads import HEADS, Head


@HEADS.register("pooled")
class PooledHead(Head):
    consumes = "pooled"
    families = ("cnn", "vit")
    summary = "global pooling (average or class token), dropout, one linear layer"

    def __init__(self, in_features: int, num_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))

    def class_weights(self) -> torch.Tensor:
        return self.fc.weight


class AuxHead(PooledHead):
    """Same shape as PooledHead; a separate class so checkpoints and logs name it clearly.
    Not registered: it is the auxiliary output beside a main head, never the main head."""

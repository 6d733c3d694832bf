"""Classification heads on top of a backbone's features.

* :class:`PooledHead` - global pooling (the backbone's own: average for CNNs, class token for
  ViT), optional dropout (kept active for Monte Carlo dropout), one linear layer.
* :class:`PCAMHead` - probabilistic-CAM pooling (Ye et al., 2020, "Weakly supervised lesion
  localization with probabilistic-CAM pooling"): per finding, a 1x1 classifier scores every
  location, ``sigmoid`` turns the scores into a probability map, and the map (normalised to sum
  to one) weights the features that the same classifier then scores. The map doubles as the
  finding's localisation. Not in timm or pytorch-grad-cam, hence written here.
* :class:`AuxHead` - the auxiliary output of a multi-task model (e.g. view or image quality).
"""

from __future__ import annotations

import torch
from torch import nn


class PooledHead(nn.Module):
    def __init__(self, in_features: int, num_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(pooled))


class PCAMHead(nn.Module):
    def __init__(self, channels: int, num_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_outputs, kernel_size=1)

    def probability_maps(self, fmap: torch.Tensor) -> torch.Tensor:
        """B x L x H x W probability that each location shows each finding."""
        return torch.sigmoid(self.classifier(fmap))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        prob = self.probability_maps(fmap)  # B x L x H x W
        weights = prob / prob.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        # per-finding pooled features: B x L x C
        pooled = torch.einsum("blhw,bchw->blc", weights, fmap)
        pooled = self.dropout(pooled)
        w = self.classifier.weight.flatten(1)  # L x C
        return (pooled * w.unsqueeze(0)).sum(-1) + self.classifier.bias


class AuxHead(PooledHead):
    """Same shape as PooledHead; a separate class so checkpoints and logs name it clearly."""

"""Probabilistic-CAM pooling (Ye et al., 2020, "Weakly supervised lesion localization with
probabilistic-CAM pooling").

Per finding, a 1x1 classifier scores every location, ``sigmoid`` turns the scores into a
probability map, and the map (normalised to sum to one) weights the features that the same
classifier then scores. The map doubles as the finding's localisation (the ``pcam`` explainer
reads it). Not in timm or pytorch-grad-cam, hence written here.
"""

from __future__ import annotations

import torch
from torch import nn

from chestxai.models.heads import HEADS, Head


@HEADS.register("pcam")
class PCAMHead(Head):
    consumes = "feature_map"
    families = ("cnn",)
    summary = "probabilistic-CAM pooling: per-finding probability maps weight the features"

    def __init__(self, channels: int, num_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_outputs, kernel_size=1)

    @classmethod
    def build(cls, backbone: nn.Module, num_outputs: int, dropout: float = 0.0) -> Head:
        if isinstance(getattr(backbone, "pre_logits", None), nn.Module):
            # VGG's fc6/fc7 (timm ConvMlp) sit between features and pooling; PCAM pools the feature
            # map itself, so they would be dead weights (and unused parameters break DDP).
            backbone.pre_logits = nn.Identity()
            backbone.head_hidden_size = backbone.num_features
        return super().build(backbone, num_outputs, dropout)

    def probability_maps(self, fmap: torch.Tensor) -> torch.Tensor:
        """B x L x H x W probability that each location shows each finding."""
        return torch.sigmoid(self.classifier(fmap))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        prob = self.probability_maps(features)  # B x L x H x W
        weights = prob / prob.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        # per-finding pooled features: B x L x C
        pooled = torch.einsum("blhw,bchw->blc", weights, features)
        pooled = self.dropout(pooled)
        w = self.classifier.weight.flatten(1)  # L x C
        return (pooled * w.unsqueeze(0)).sum(-1) + self.classifier.bias

    def class_weights(self) -> torch.Tensor:
        return self.classifier.weight.flatten(1)

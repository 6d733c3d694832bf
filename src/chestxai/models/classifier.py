"""ChestClassifier: a timm backbone + a task head, carrying the metadata to rebuild itself.

``forward`` returns the main logits (``B x L``; for a binary task ``L == 1``). The task decides
how logits become probabilities: sigmoid for binary/multi-label, softmax for multi-class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from chestxai.models.heads import AuxHead, PCAMHead, PooledHead

HEADS = ("pooled", "pcam")


class ChestClassifier(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        family: str,
        num_labels: int,
        task: str,
        head: str = "pooled",
        dropout: float = 0.0,
        aux_outputs: int = 0,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
        if head == "pcam" and family != "cnn":
            raise ValueError("the PCAM head needs a spatial feature map; use head='pooled' for ViT models")
        self.backbone = backbone
        self.family = family
        self.task = task
        self.head_type = head
        self.num_labels = num_labels
        if head == "pcam" and isinstance(getattr(backbone, "pre_logits", None), nn.Module):
            # VGG's fc6/fc7 (timm ConvMlp) sit between features and pooling; PCAM pools the feature
            # map itself, so they would be dead weights (and unused parameters break DDP).
            backbone.pre_logits = nn.Identity()
            backbone.head_hidden_size = backbone.num_features
        # timm: num_features = channels of the feature map; head_hidden_size = width after pre-logits
        pooled_width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
        if head == "pcam":
            self.head: nn.Module = PCAMHead(backbone.num_features, num_labels, dropout)
        else:
            self.head = PooledHead(pooled_width, num_labels, dropout)
        self.aux_head = AuxHead(pooled_width, aux_outputs, dropout) if aux_outputs else None
        self.config = dict(config or {})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features before pooling: B x C x H x W (CNN) or B x N x C tokens (ViT)."""
        return self.backbone.forward_features(x)

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(feats, pre_logits=True)

    def forward(self, x: torch.Tensor, with_aux: bool = False):
        """Main logits; with ``with_aux``, ``(main, aux)`` from the same pass (aux is None without an
        auxiliary head). One entry point, so a DistributedDataParallel wrapper sees every call."""
        feats = self.features(x)
        if self.head_type == "pcam" and not with_aux:
            return self.head(feats)
        pooled = self.pool(feats)
        main = self.head(feats) if self.head_type == "pcam" else self.head(pooled)
        if not with_aux:
            return main
        return main, (self.aux_head(pooled) if self.aux_head is not None else None)

    def forward_multitask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Main logits and auxiliary logits (None without an auxiliary head) from one pass."""
        return self.forward(x, with_aux=True)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1) if self.task == "multiclass" else torch.sigmoid(logits)

    def classifier_weights(self) -> torch.Tensor:
        """L x C weights that map pooled features to logits (what CAM multiplies feature maps by)."""
        if self.head_type == "pcam":
            return self.head.classifier.weight.flatten(1)
        return self.head.fc.weight

"""ChestClassifier: a timm backbone + a registered head (:mod:`chestxai.models.heads`), carrying
the metadata to rebuild itself.

``forward`` returns the main logits (``B x L``; for a binary task ``L == 1``). The task decides
how logits become probabilities: sigmoid for binary/multi-label, softmax for multi-class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from chestxai.models.heads import get_head, pooled_width
from chestxai.models.heads.pooled import AuxHead


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
        head_cls = get_head(head, family)  # unknown names list the registered heads
        self.backbone = backbone
        self.family = family
        self.task = task
        self.head_type = head
        self.num_labels = num_labels
        self.head = head_cls.build(backbone, num_labels, dropout)
        # after the head: it may adapt the backbone (PCAM drops VGG's pre-logits layers)
        self.aux_head = AuxHead(pooled_width(backbone), aux_outputs, dropout) if aux_outputs else None
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
        on_pooled = self.head.consumes == "pooled"
        pooled = self.pool(feats) if on_pooled or with_aux else None  # no pooling a head does not use
        main = self.head(pooled if on_pooled else feats)
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
        return self.head.class_weights()

"""Losses per task, with NaN (unknown) labels masked out.

Multi-label chest X-ray tables leave many findings unknown (CheXpert ``-1`` under the ``ignore``
policy, partially labelled merges); those entries must not count as negatives, so the binary
loss is computed elementwise and averaged over the known entries only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_bce(
    logits: torch.Tensor,
    target: torch.Tensor,
    pos_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """BCE-with-logits over the entries whose target is not NaN (mean over known entries)."""
    known = ~torch.isnan(target)
    t = torch.nan_to_num(target, nan=0.0)
    if label_smoothing:
        t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    loss = F.binary_cross_entropy_with_logits(logits.float(), t, pos_weight=pos_weight, reduction="none")
    return (loss * known).sum() / known.sum().clamp_min(1)


def multiclass_ce(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy from one-hot targets; rows with an unknown class (NaN) are skipped."""
    known = ~torch.isnan(target).any(dim=1)
    if not known.any():
        return logits.sum() * 0.0
    index = target[known].argmax(dim=1)
    return F.cross_entropy(logits[known].float(), index, weight=class_weight, label_smoothing=label_smoothing)


def task_loss(
    task: str, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, smoothing: float
):
    if task == "multiclass":
        return multiclass_ce(logits, target, weight, smoothing)
    return masked_bce(logits, target, weight, smoothing)

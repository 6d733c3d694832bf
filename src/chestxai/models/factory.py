"""create_model / list_models: every registered architecture behind one call, 1-channel input."""

from __future__ import annotations

import logging
from pathlib import Path

from chestxai.models.classifier import ChestClassifier
from chestxai.models.heads import get_head
from chestxai.models.registry import MODELS
from chestxai.models.weights import check_weights_fit, read_state_dict, weights_file
from chestxai.tasks import check_task

log = logging.getLogger(__name__)


def list_models() -> list[str]:
    return MODELS.names()


def create_model(
    name: str,
    num_labels: int,
    task: str = "multilabel",
    head: str = "pooled",
    dropout: float = 0.0,
    aux_outputs: int = 0,
    input_size: int = 224,
    pretrained: bool = False,
    weights: str | Path | None = None,
    freeze_backbone: bool = False,
    in_chans: int = 1,
) -> ChestClassifier:
    """Build a classifier for ``num_labels`` outputs (1 for binary) on ``in_chans``-channel images.

    ``weights`` (a local file) or ``pretrained=True`` (timm's hub/torch cache) load ImageNet
    weights adapted to one channel; a failure is an error, never a silent random init. The file
    is read once: the same state dict is checked for fit and loaded.
    ``freeze_backbone`` trains only the head (feature extraction, as in the MobileNetV2 setup).
    """
    spec = MODELS.get(name)
    check_task(task)
    get_head(head, spec.family)  # a bad head fails before any weights are read
    if task == "binary" and num_labels != 1:
        raise ValueError(f"a binary task has one output logit, got num_labels={num_labels}")
    if input_size < spec.min_size:
        raise ValueError(f"{name} needs inputs of at least {spec.min_size} px, got {input_size}")
    file = weights_file(name, spec.timm_name, pretrained, weights)
    state = read_state_dict(file) if file is not None else None
    try:
        backbone = spec.create_backbone(in_chans, input_size, state)
    except (RuntimeError, ValueError, OSError) as exc:  # a weights file that does not fit this model
        if state is None:
            raise
        # say *why* when the file is for another architecture; else pass timm's reason on
        check_weights_fit(spec.create_backbone(in_chans, input_size), set(state), file, name)
        raise ValueError(
            f"weights file {file} could not be loaded into {name} ({spec.timm_name}): {exc}"
        ) from exc
    if state is not None:
        check_weights_fit(backbone, set(state), file, name)
    config = {
        "name": name,
        "num_labels": num_labels,
        "task": task,
        "head": head,
        "dropout": dropout,
        "aux_outputs": aux_outputs,
        "input_size": input_size,
        "in_chans": in_chans,
        "freeze_backbone": freeze_backbone,
    }
    model = ChestClassifier(backbone, spec.family, num_labels, task, head, dropout, aux_outputs, config)
    if freeze_backbone:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    return model

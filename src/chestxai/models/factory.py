"""create_model / list_models: every registered architecture behind one call, 1-channel input."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import timm

from chestxai.models.classifier import ChestClassifier
from chestxai.models.registry import MODELS
from chestxai.models.weights import check_weights_fit, pretrained_kwargs

log = logging.getLogger(__name__)
TASKS = ("binary", "multiclass", "multilabel")


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
    weights adapted to one channel; a failure is an error, never a silent random init.
    ``freeze_backbone`` trains only the head (feature extraction, as in the MobileNetV2 setup).
    """
    spec = MODELS.get(name)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if task == "binary" and num_labels != 1:
        raise ValueError(f"a binary task has one output logit, got num_labels={num_labels}")
    if input_size < spec.min_size:
        raise ValueError(f"{name} needs inputs of at least {spec.min_size} px, got {input_size}")
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": in_chans}
    if spec.family == "vit":
        kwargs["img_size"] = input_size
    kwargs.update(pretrained_kwargs(name, spec.timm_name, pretrained, weights))
    try:
        backbone = timm.create_model(spec.timm_name, **kwargs)
    except (RuntimeError, ValueError, OSError) as exc:  # a weights file that does not fit this model
        if kwargs["pretrained"]:
            file = kwargs["pretrained_cfg_overlay"]["file"]
            raise ValueError(
                f"weights file {file} could not be loaded into {name} ({spec.timm_name}): {exc}"
            ) from exc
        raise
    if kwargs["pretrained"]:
        check_weights_fit(backbone, kwargs["pretrained_cfg_overlay"]["file"], name)
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

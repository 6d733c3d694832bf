"""create_model / list_models: every registered architecture behind one call, 1-channel input."""

from __future__ import annotations

import logging
from pathlib import Path

from chestxai.models import xrv
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
    published_head: bool = False,
    label_names: list[str] | None = None,
    xrv_state: xrv.XrvState | None = None,
) -> ChestClassifier:
    """Build a classifier for ``num_labels`` outputs (1 for binary) on ``in_chans``-channel images.

    ``weights`` (a local file), ``weights="xrv:NAME"`` / ``"xrv:PATH"`` (torchxrayvision's chest
    X-ray weights, :mod:`chestxai.models.xrv`) or ``pretrained=True`` (timm's ImageNet weights from
    the hub/torch cache, downloaded when online) initialise the backbone, adapted to one channel,
    under a new head; a failure is an error, never a silent random init. The file is read once:
    the same state dict is checked for fit and loaded.
    ``freeze_backbone`` trains only the head (feature extraction, as in the MobileNetV2 setup).
    ``published_head`` (xrv weights only) starts the head from torchxrayvision's classifier for
    ``label_names`` instead of a new one (:func:`chestxai.models.xrv.copy_published_head`).
    ``xrv_state``: the xrv ``weights`` file already read (by a caller that also needs its operating
    points), so that it is not read twice.
    """
    spec = MODELS.get(name)
    _check_args(name, spec, task, head, num_labels, input_size)
    if published_head and not xrv.is_xrv(weights):
        raise ValueError(published_head_error(weights))
    if xrv.is_xrv(weights):
        loaded = xrv_state if xrv_state is not None else xrv.read_xrv_state(str(weights), name)
        state, file, source_chans = loaded.state, loaded.file, 1
    else:
        file = weights_file(name, spec.timm_name, pretrained, weights)
        state, source_chans = (read_state_dict(file) if file is not None else None), 3
    model = build_classifier(
        name, num_labels, task, head, dropout, aux_outputs, input_size, freeze_backbone, in_chans,
        state=state, source=file, source_chans=source_chans,
    )  # fmt: skip
    if published_head:
        xrv.copy_published_head(model, loaded, label_names or [], task)
    return model


def published_head_error(weights: object) -> str:
    return (
        f"model.published_head needs torchxrayvision weights (model.weights: xrv:NAME or xrv:PATH), "
        f"got {weights or 'none'!r}"
    )


def locate_weights(name: str, pretrained: bool, weights: str | Path | None) -> Path | None:
    """The file ``create_model`` would initialise from (downloaded now when that is needed and the
    machine is online), without reading it: for checks before any data is prepared."""
    spec = MODELS.get(name)
    if xrv.is_xrv(weights):
        return xrv.resolve_file(str(weights))[0]
    return weights_file(name, spec.timm_name, pretrained, weights)


def check_architecture(name: str, head: str, input_size: int) -> None:
    """The checks that need only the recipe (known model, a head it takes, a large enough input):
    ``chestxai train`` runs them before any data is prepared, not after minutes of decoding."""
    spec = MODELS.get(name)
    get_head(head, spec.family)
    if input_size < spec.min_size:
        raise ValueError(
            f"{name} needs inputs of at least {spec.min_size} px, got {input_size} "
            f"(set model.input_size: {spec.min_size} to resize the images for it)"
        )


def _check_args(name: str, spec, task: str, head: str, num_labels: int, input_size: int) -> None:
    """Bad arguments fail before any weights are read."""
    check_task(task)
    check_architecture(name, head, input_size)
    if task == "binary" and num_labels != 1:
        raise ValueError(f"a binary task has one output logit, got num_labels={num_labels}")


def build_classifier(
    name: str,
    num_labels: int,
    task: str = "multilabel",
    head: str = "pooled",
    dropout: float = 0.0,
    aux_outputs: int = 0,
    input_size: int = 224,
    freeze_backbone: bool = False,
    in_chans: int = 1,
    *,
    state: dict | None = None,
    source: Path | None = None,
    source_chans: int = 3,
) -> ChestClassifier:
    """:func:`create_model` once the weights are read: ``state`` (timm-keyed, ``source_chans``
    input channels, from file ``source``) or None for a random init."""
    spec = MODELS.get(name)
    _check_args(name, spec, task, head, num_labels, input_size)
    try:
        backbone = spec.create_backbone(in_chans, input_size, state, source_chans)
    except (RuntimeError, ValueError, OSError) as exc:  # a weights file that does not fit this model
        if state is None:
            raise
        # say *why* when the file is for another architecture; else pass timm's reason on
        check_weights_fit(spec.create_backbone(in_chans, input_size), set(state), source, name)
        raise ValueError(
            f"weights file {source} could not be loaded into {name} ({spec.timm_name}): {exc}"
        ) from exc
    if state is not None:
        check_weights_fit(backbone, set(state), source, name)
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

"""Checkpoints that rebuild model and preprocessing on their own, written atomically.

Contents (only tensors, dicts, lists, strings and numbers, so ``torch.load(weights_only=True)``
reads them)::

    format          1
    model           create_model kwargs (name, num_labels, task, head, dropout, input_size, ...)
    state_dict      weights
    label_names     ordered output names
    preprocess      {"size": int, "mean": float, "std": float}   (uint8 / 255 -> (x - mean) / std)
    thresholds      {label: float} operating thresholds (0.5 until evaluation chooses others)
    config          the resolved training config (dict)
    epoch, best_metric, history_len, extra ...   training state for --resume (optimizer etc.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from chestxai.atomic import atomic_path
from chestxai.models.classifier import ChestClassifier
from chestxai.models.factory import create_model

FORMAT = 1


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def make_checkpoint(
    model: ChestClassifier,
    label_names: list[str],
    preprocess: dict[str, float],
    config: dict | None = None,
    thresholds: dict[str, float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    model = getattr(model, "module", model)  # unwrap DDP
    model_kwargs = {k: v for k, v in model.config.items() if k != "weights"}
    return {
        "format": FORMAT,
        "model": model_kwargs,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "label_names": list(label_names),
        "preprocess": dict(preprocess),
        "thresholds": dict(thresholds or {name: 0.5 for name in label_names}),
        "config": config or {},
        **extra,
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a chestxai checkpoint (format {FORMAT}); was it written by another tool?"
        )
    return ckpt


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[ChestClassifier, dict[str, Any]]:
    """Rebuild the model from a checkpoint alone; returns (model in eval mode, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    kwargs = dict(ckpt["model"])
    kwargs.pop("freeze_backbone", None)
    model = create_model(**kwargs, pretrained=False)
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, ckpt


def update_thresholds(path: str | Path, thresholds: dict[str, float]) -> None:
    """Store chosen operating thresholds in an existing checkpoint (atomically)."""
    ckpt = read_checkpoint(path)
    unknown = set(thresholds) - set(ckpt["label_names"])
    if unknown:
        raise KeyError(
            f"thresholds for unknown labels {sorted(unknown)}; the model has {ckpt['label_names']}"
        )
    ckpt["thresholds"] = {**ckpt["thresholds"], **{k: float(v) for k, v in thresholds.items()}}
    save_atomic(ckpt, path)

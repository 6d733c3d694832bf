"""Checkpoints that rebuild model and preprocessing on their own, written atomically and never
rewritten after training (a later stage writes its own files beside them).

Contents (only tensors, dicts, lists, strings and numbers, so ``torch.load(weights_only=True)``
reads them)::

    format          1
    model           create_model kwargs (name, num_labels, task, head, dropout, input_size, ...)
    state_dict      weights
    label_names     ordered output names
    preprocess      {"size": int, "mean": float, "std": float}   (uint8 / 255 -> (x - mean) / std)
    thresholds      {label: float} training-time defaults (0.5; torchxrayvision's operating points for a
                    published classifier as it is); evaluation writes the operating
                    thresholds to RUN/thresholds.json (:mod:`chestxai.rundir.thresholds`), never here
    config          the resolved training config (dict)
    epoch, best_metric, history_len, extra ...   training state for --resume (optimizer etc.)
"""

from __future__ import annotations

import os
import pickle
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
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused a global: never run foreign code
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a chestxai checkpoint; refused to unpickle it ({reason[:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:  # not a torch file at all (HTML, truncated, ...)
        raise ValueError(f"{path} is not a chestxai checkpoint ({str(exc).strip()[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a chestxai checkpoint (format {FORMAT}); was it written by another tool?"
        )
    return ckpt


def build_model(
    model_kwargs: dict[str, Any], state_dict: dict[str, torch.Tensor], device: str | torch.device = "cpu"
) -> ChestClassifier:
    """The model a checkpoint's ``model`` kwargs and ``state_dict`` describe, in eval mode on ``device``."""
    kwargs = dict(model_kwargs)
    kwargs.pop("freeze_backbone", None)
    model = create_model(**kwargs, pretrained=False)
    model.load_state_dict(state_dict)
    model.to(device).eval()
    return model


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[ChestClassifier, dict[str, Any]]:
    """Rebuild the model from a checkpoint alone; returns (model in eval mode, checkpoint dict).

    For tests and the training side only: stages open runs with
    :class:`chestxai.models.trained_run.TrainedRun`, which reads the file once into typed fields."""
    ckpt = read_checkpoint(path)
    return build_model(ckpt["model"], ckpt["state_dict"], device), ckpt

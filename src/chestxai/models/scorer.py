"""What scores a run directory's images: its checkpoint's model, or an ensemble's members.

``evaluate`` asks a :class:`Scorer` for probabilities and for the few facts it records (labels,
task, the cache trained on, the checkpoint and epoch the numbers belong to); it does not care
whether one model or several answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chestxai.models.checkpoint import load_model
from chestxai.models.ensemble_predict import EnsembleMember, predict_ensemble
from chestxai.models.predict import predict_probs
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble


@dataclass
class Scorer:
    label_names: list[str]
    task: str
    cache_dir: str | None  # the prepared cache the model was trained on
    checkpoint: str | None  # path of checkpoint.pt (None for an ensemble)
    epoch: int | None  # checkpoint epoch (None when unknown or an ensemble)
    default_thresholds: dict[str, float]  # training-time defaults (0.5)
    description: str  # model name, or "ensemble of a, b"
    predict: Callable[..., np.ndarray]  # (images, batch_size=, device=, progress=) -> N x L


def _cache_dir(ckpt: dict) -> str | None:
    return ((ckpt.get("config") or {}).get("data") or {}).get("cache_dir")


def load_scorer(run: RunDir, device: str = "cpu") -> Scorer:
    """The run's model (``checkpoint.pt``) or, for an ensemble run, its weighted members."""
    if run.is_ensemble:
        return _ensemble_scorer(run, device)
    model, ckpt = load_model(run.require_checkpoint(), device=device)
    names = list(ckpt["label_names"])

    def predict(images, batch_size: int = 256, device: str = device, progress: bool = False) -> np.ndarray:
        return predict_probs(model, images, ckpt["preprocess"], batch_size, device, progress)

    epoch = ckpt.get("epoch")
    return Scorer(
        names,
        str(ckpt.get("model", {}).get("task") or ckpt.get("task") or ""),
        _cache_dir(ckpt),
        str(run.checkpoint),
        int(epoch) if epoch is not None else None,
        dict(ckpt.get("thresholds") or {}),
        str(ckpt.get("model", {}).get("name", "?")),
        predict,
    )


def _ensemble_scorer(run: RunDir, device: str) -> Scorer:
    manifest = read_ensemble(run)
    members = []
    for path, weight in zip(manifest.members, manifest.weights, strict=True):
        member = RunDir(Path(path))
        model, ckpt = load_model(member.require_checkpoint(), device=device)
        if list(ckpt["label_names"]) != manifest.label_names:
            raise ValueError(
                f"ensemble member {member.root} now predicts {ckpt['label_names']}, not {manifest.label_names} "
                f"as {run.ensemble} records; re-create the ensemble"
            )
        members.append(EnsembleMember(model, ckpt["preprocess"], weight))

    def predict(images, batch_size: int = 256, device: str = device, progress: bool = False) -> np.ndarray:
        return predict_ensemble(members, images, batch_size, device, progress)

    names = ", ".join(Path(m).name for m in manifest.members)
    return Scorer(
        manifest.label_names,
        manifest.task,
        manifest.cache_dir,
        None,
        None,
        {},
        f"ensemble of {names}",
        predict,
    )

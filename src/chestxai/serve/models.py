"""The models a service (or ``predict``) scores with: loaded once, from read-only run directories.

A :class:`ServedModel` is built from a :class:`~chestxai.models.trained_run.TrainedRun`
(``RUN/checkpoint.pt`` read with ``torch.load(weights_only=True)``: no pickle runs) plus the
operating thresholds; nothing is ever written into the run directory, so it may be mounted read-only.
Explanations and MC dropout flip module state (hooks, dropout train mode) for the length of a
call, so they hold the model's lock; plain forwards of the micro-batcher run one at a time on a
single worker thread and need no lock against each other, but do take it so that they never
overlap an explanation.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.metrics.decisions import decide
from chestxai.rundir import RunDir, safe_name
from chestxai.rundir.thresholds import OperatingThresholds

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    name: str
    run: RunDir
    model: Any  # ChestClassifier in eval mode
    label_names: list[str]
    task: str
    preprocess: dict
    resize_to: int  # cache size: what a decoded image is resized to before preprocessing
    thresholds: OperatingThresholds
    description: str
    epoch: int | None
    device: str = "cpu"
    training_data: dict = field(default_factory=dict)  # dataset / cache the run was trained on
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _explainers: dict = field(default_factory=dict, repr=False)
    #: the run's conformal calibration (``chestxai uncertainty RUN --conformal``), or None
    conformal: Any = field(default=None, repr=False)

    # --- facts ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run": str(self.run.root),
            "model": self.description,
            "task": self.task,
            "labels": list(self.label_names),
            "thresholds": dict(self.thresholds.values),
            "threshold_source": self.thresholds.source,
            "threshold_policy": self.thresholds.policy,
            "input_size": int(self.preprocess["size"]),
            "resize_to": self.resize_to,
            "checkpoint_epoch": self.epoch,
            "uncertainty": self.uncertainty_methods(),
        }

    # --- compute ----------------------------------------------------------------------------
    def forward(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 ``N x S x S`` (S = ``resize_to``) -> float32 ``N x L`` probabilities, batched."""
        from chestxai.models.predict import predict_probs

        with self.lock:
            return predict_probs(self.model, images, self.preprocess, batch_size, self.device)

    def decisions(self, probs: np.ndarray) -> np.ndarray:
        t = self.thresholds
        return decide(probs, self.task, [t.values[n] for n in self.label_names], t.temperature)

    def to_input(self, images: np.ndarray):
        from chestxai.models.preprocess import to_input

        return to_input(np.asarray(images), self.preprocess).to(self.device)

    def explain(self, images: np.ndarray, indices: list[int], method: str = "gradcam") -> np.ndarray:
        """Heatmaps (``N x s x s`` in [0, 1], s = model input size) through the library's Explainer."""
        from chestxai.explain import Explainer

        with self.lock:
            if method not in self._explainers:
                self._explainers[method] = Explainer(self.model, method)
            return self._explainers[method].explain(self.to_input(images), indices)

    def uncertainty_methods(self) -> list[str]:
        """What :meth:`uncertainty` can do for this model: the registered methods that sample one
        model and accept it as it is (MC dropout needs active dropout)."""
        from chestxai.uncertainty.methods import get_method, single_model_methods

        return [n for n in single_model_methods() if get_method(n).available(self.model)]

    def uncertainty(
        self,
        images: np.ndarray,
        method: str = "mc-dropout",
        passes: int = 30,
        seed: int = 0,
        should_stop=None,
    ) -> dict[str, np.ndarray]:
        """Mean/std (``N x L``) through :func:`chestxai.uncertainty.predict_with_uncertainty`, the
        call the uncertainty stage makes; refused (ValueError) for a method the model cannot do.
        ``should_stop`` (asked between chunks of passes) ends it early with ``SamplingCancelled``."""
        from chestxai.uncertainty import predict_with_uncertainty

        if method not in self.uncertainty_methods():
            raise ValueError(
                f"uncertainty={method!r} is not available for {self.name}: choose one of "
                f"{self.uncertainty_methods()} (MC dropout needs a model trained with dropout > 0)"
            )
        with self.lock:
            out = predict_with_uncertainty(
                self.model,
                self.to_input(images),
                method=method,
                passes=passes,
                seed=seed,
                preprocess=self.preprocess,
                should_stop=should_stop,
            )
        return {k: np.asarray(out[k], dtype=np.float32) for k in ("mean", "std")}


def load_served(run_path: str | Path, name: str | None = None, device: str = "cpu") -> ServedModel:
    """A single-model run opened as a :class:`~chestxai.models.trained_run.TrainedRun` (weights
    only) with its operating thresholds; reads only."""
    from chestxai.models.trained_run import TrainedRun

    trained = TrainedRun.open(run_path, device, single=True)
    return ServedModel(
        name=name or safe_name(trained.run.root.resolve().name),
        run=trained.run,
        model=trained.model,
        label_names=trained.label_names,
        task=trained.task,
        preprocess=trained.preprocess,
        resize_to=trained.image_size,
        thresholds=trained.operating_thresholds(),
        description=trained.model_name,
        epoch=trained.epoch,
        device=str(trained.device),
        training_data=_training_data(trained.config),
        conformal=_conformal_for(trained.run, trained.label_names, trained.epoch),
    )


def _conformal_for(run: RunDir, label_names: list[str], epoch: int | None):
    """The run's conformal calibration when it fits the model's labels and checkpoint epoch (read
    once, at load); a stale one is ignored with a warning, never applied to another model."""
    from chestxai.uncertainty.conformal import load_conformal

    cal = load_conformal(run)
    if cal is not None and cal.label_names != list(label_names):
        log.warning(
            "%s is for labels %s, not %s; ignoring it", run.conformal.summary, cal.label_names, label_names
        )
        return None
    if cal is not None and cal.epoch is not None and epoch is not None and int(cal.epoch) != int(epoch):
        log.warning(
            "%s was calibrated for checkpoint epoch %s but checkpoint.pt is epoch %s; ignoring it "
            "(re-run `chestxai evaluate %s` and `chestxai uncertainty %s --conformal`)",
            run.conformal.summary, cal.epoch, epoch, run.root, run.root,
        )  # fmt: skip
        return None
    return cal


def _training_data(config: dict) -> dict:
    """What the model card says of the training data: the recipe's data keys that name it."""
    data = config.get("data") or {}
    keys = ("dataset", "source", "cache_dir", "size", "labels")
    return {
        k: data[k] if isinstance(data[k], (str, int, float, bool)) else str(data[k])
        for k in keys
        if k in data
    }


def load_all(runs: list[str | Path], device: str = "cpu") -> dict[str, ServedModel]:
    """Several runs under distinct names (the folder name; a clash is refused before loading)."""
    names = [safe_name(Path(r).resolve().name) for r in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"runs {dupes} share a folder name, and a served model is named after its folder; "
            "serve copies under distinct names"
        )
    if not runs:
        raise ValueError("give at least one run directory to serve")
    return {n: load_served(r, n, device) for n, r in zip(names, runs, strict=True)}

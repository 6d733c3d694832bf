"""A trained run, opened once: the one reader of ``checkpoint.pt`` above the checkpoint module.

Every stage (evaluate, explain, uncertainty, serve, predict, export, compare/cost, report, synth's
consistency check, bench) opens a run with :meth:`TrainedRun.open` and reads typed fields; none
indexes the checkpoint dict (``tests/models/test_trained_run_only.py`` enforces it). Before, six
openers read ~70 raw keys with four different fallbacks for the task and two different ensemble
agreement checks; a field now has one meaning and one fallback, written here.

What a checkpoint holds is described in :mod:`chestxai.models.checkpoint`; the fallbacks for old
checkpoints are:

* **task**: ``model.task`` (what the model is rebuilt with), else the top-level ``task`` of the
  first checkpoints, else what the rebuilt head computes: one sigmoid output is ``binary``,
  several are ``multilabel`` (a softmax head always records ``multiclass``, it cannot be rebuilt
  without it).
* **image size** (the side of the cache rows the model was trained on, to which new images are
  resized before :func:`~chestxai.models.preprocess.to_input` takes them to the model input):
  ``config.data.size``, else the model input size ``preprocess.size``.
* **epoch**: None when not recorded; **thresholds**: the recorded training-time defaults, else none
  (:func:`~chestxai.rundir.thresholds.operating_thresholds` then falls back to 0.5).

An ensemble (``RUN/ensemble.json``, or several run directories given together as ``uncertainty
--method ensemble`` does) is opened the same way: its members are checked in one place
(:func:`check_agreement`) and :meth:`TrainedRun.predict` is their weighted average. Members may
differ in input size and normalisation (each predicts its own input); a stage that needs one
geometry (uncertainty's pixel-wise comparisons) opens with ``one_input_size=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chestxai.devices import pick_device
from chestxai.models.checkpoint import build_model, read_checkpoint
from chestxai.models.classifier import ChestClassifier
from chestxai.models.ensemble_predict import EnsembleMember, predict_ensemble
from chestxai.models.predict import predict_probs
from chestxai.models.run_inputs import ModelFacts, RunInputs, resolve_inputs
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble
from chestxai.rundir.thresholds import OperatingThresholds, operating_thresholds


def _task(ckpt: dict[str, Any]) -> str:
    """The one task fallback rule (module docstring)."""
    task = (ckpt.get("model") or {}).get("task") or ckpt.get("task")
    if task:
        return str(task)
    return "binary" if len(ckpt["label_names"]) == 1 else "multilabel"


@dataclass(frozen=True)
class Member:
    """One trained model's checkpoint, read once: every fact a stage may need, typed."""

    run: RunDir
    path: Path  # the checkpoint.pt it was read from
    label_names: tuple[str, ...]
    task: str
    preprocess: dict[str, float]  # {"size", "mean", "std"}: to_input's recipe
    image_size: int  # side of the cache rows it was trained on
    cache_dir: str | None
    epoch: int | None
    thresholds: dict[str, float]  # training-time defaults
    model_name: str
    model_kwargs: dict[str, Any]  # create_model's arguments
    config: dict[str, Any]  # the resolved training config
    state_dict: dict[str, torch.Tensor] = field(repr=False, compare=False)

    @classmethod
    def read(cls, run: RunDir) -> Member:
        path = run.require_checkpoint()
        ckpt = read_checkpoint(path)
        config = dict(ckpt.get("config") or {})
        data = config.get("data") or {}
        preprocess = dict(ckpt["preprocess"])
        epoch = ckpt.get("epoch")
        model_kwargs = dict(ckpt["model"])
        return cls(
            run,
            path,
            tuple(str(n) for n in ckpt["label_names"]),
            _task(ckpt),
            preprocess,
            int(data.get("size") or preprocess["size"]),
            data.get("cache_dir"),
            int(epoch) if epoch is not None else None,
            dict(ckpt.get("thresholds") or {}),
            str(model_kwargs.get("name", "?")),
            model_kwargs,
            config,
            ckpt["state_dict"],
        )

    @property
    def input_size(self) -> int:
        """Side of the model's own input (``preprocess.size``)."""
        return int(self.preprocess["size"])

    def build(self, device: torch.device) -> ChestClassifier:
        return build_model(self.model_kwargs, self.state_dict, device)


#: what every member of an ensemble must share, read from a :class:`Member`, in the order checked
AGREE = {
    "label names": lambda m: list(m.label_names),
    "task": lambda m: m.task,
    "preprocessing (input size)": lambda m: m.input_size,  # only with one_input_size
    "training cache": lambda m: m.cache_dir,
}


def check_agreement(members: Sequence[Member], one_input_size: bool = False) -> None:
    """ValueError naming the first member whose labels, task, cache (and with ``one_input_size``
    its model input size) differ from the first member's; raised after reading the checkpoints,
    before any model is built."""
    first = members[0]
    fields = {k: v for k, v in AGREE.items() if one_input_size or not k.startswith("preprocessing")}
    for member in members[1:]:
        for what, get in fields.items():
            if get(member) != get(first):
                raise ValueError(
                    f"ensemble members disagree on {what}: {first.run.root} has {get(first)!r} but "
                    f"{member.run.root} has {get(member)!r}; ensemble only runs trained for the same task "
                    f"on the same cache"
                )


def _open_members(
    run: RunDir, others: Sequence[str | Path], one_input_size: bool
) -> tuple[list[Member], list[float], str]:
    """Members, normalised weights and where they came from (for messages)."""
    if others:
        dirs = [run, *(RunDir(Path(o)) for o in others)]
        source = str(run.checkpoint)  # the first member's facts stand for the group
        weights = [1.0] * len(dirs)
    elif run.is_ensemble:
        manifest = read_ensemble(run)
        dirs, weights, source = (
            [RunDir(Path(m)) for m in manifest.members],
            list(manifest.weights),
            str(run.ensemble),
        )
    else:
        return [Member.read(run)], [1.0], str(run.checkpoint)
    if len(dirs) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, {source} lists {len(dirs)}")
    for d in dirs:
        d.require_dir()
    members = [Member.read(d) for d in dirs]
    if not others:
        expected = read_ensemble(run).label_names
        for m in members:
            if list(m.label_names) != list(expected):
                raise ValueError(
                    f"ensemble member {m.run.root} now predicts {list(m.label_names)}, not {expected} "
                    f"as {run.ensemble} records; re-create the ensemble"
                )
    check_agreement(members, one_input_size)
    total = sum(weights)
    return members, [w / total for w in weights], source


@dataclass(frozen=True)
class TrainedRun:
    """A run directory's model(s), facts and inputs (see the module docstring)."""

    run: RunDir
    members: tuple[Member, ...]
    weights: tuple[float, ...]  # on the simplex, one per member
    device: torch.device
    source: str  # the file the facts come from, for messages
    _models: list[ChestClassifier] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def open(
        cls,
        run_dir: str | Path | RunDir,
        device: str | torch.device | None = "auto",
        members: Sequence[str | Path] = (),
        *,
        single: bool = False,
        one_input_size: bool = False,
    ) -> TrainedRun:
        """Read ``run_dir``'s checkpoint (or its ensemble's members, or ``run_dir`` plus the
        ``members`` run directories) once and check them; the models are built on first use.
        ``single``: a stage that needs one network reads only ``checkpoint.pt`` (an ensemble run has
        none: the error names its members' way out);
        ``one_input_size``: a stage comparing members pixel for pixel needs one input size."""
        run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
        run.require_dir()
        resolved = pick_device(device)
        if single:  # the run's own checkpoint; an ensemble's error says what to do instead
            found, weights, source = [Member.read(run)], [1.0], str(run.checkpoint)
        else:
            found, weights, source = _open_members(run, members, one_input_size)
        return cls(run, tuple(found), tuple(weights), resolved, source)

    # --- facts -----------------------------------------------------------------------------
    @property
    def first(self) -> Member:
        return self.members[0]

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    @property
    def label_names(self) -> list[str]:
        return list(self.first.label_names)

    @property
    def task(self) -> str:
        return self.first.task

    @property
    def preprocess(self) -> dict[str, float]:
        """The (first) model's preprocessing; ensemble members each keep their own."""
        return dict(self.first.preprocess)

    @property
    def image_size(self) -> int:
        return self.first.image_size

    @property
    def cache_dir(self) -> str | None:
        return self.first.cache_dir

    @property
    def checkpoint(self) -> Path | None:
        """``checkpoint.pt`` the numbers belong to (None for an ensemble)."""
        return None if self.is_ensemble else self.first.path

    @property
    def epoch(self) -> int | None:
        """The checkpoint's epoch (None when unknown or an ensemble)."""
        return None if self.is_ensemble else self.first.epoch

    @property
    def default_thresholds(self) -> dict[str, float]:
        """Training-time thresholds (none for an ensemble: they belong to single members)."""
        return {} if self.is_ensemble else dict(self.first.thresholds)

    @property
    def model_name(self) -> str:
        return self.first.model_name

    @property
    def description(self) -> str:
        """The model name, or ``ensemble of a, b`` (member folder names)."""
        if not self.is_ensemble:
            return self.model_name
        return "ensemble of " + ", ".join(m.run.root.name for m in self.members)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.first.config)

    @property
    def facts(self) -> ModelFacts:
        return ModelFacts(self.label_names, self.task, self.cache_dir, self.source)

    # --- models and predictions --------------------------------------------------------------
    @property
    def models(self) -> list[ChestClassifier]:
        """Every member's model in eval mode on :attr:`device` (built once, on first use)."""
        if not self._models:
            self._models.extend(m.build(self.device) for m in self.members)
        return list(self._models)

    @property
    def model(self) -> ChestClassifier:
        """The one model of a single run (an ensemble has :attr:`models`)."""
        if self.is_ensemble:
            raise ValueError(f"{self.run.root} is an ensemble of {len(self.members)} models, not one model")
        return self.models[0]

    def predict(self, images, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Probabilities ``N x L`` for uint8 ``N x H x W`` images (the members' weighted average)."""
        if not self.is_ensemble:
            return predict_probs(self.model, images, self.preprocess, batch_size, self.device, progress)
        members = [
            EnsembleMember(model, dict(m.preprocess), w)
            for model, m, w in zip(self.models, self.members, self.weights, strict=True)
        ]
        return predict_ensemble(members, images, batch_size, self.device, progress)

    def operating_thresholds(self) -> OperatingThresholds:
        """``RUN/thresholds.json`` when it fits the model, else the checkpoint's defaults."""
        return operating_thresholds(self.run, self.label_names, self.default_thresholds, self.epoch)

    def inputs(self, data: str | Path | None = None) -> RunInputs:
        """The checked cache (``data`` or the training cache) and the run's split rows."""
        return resolve_inputs(self.run, self.facts, data)

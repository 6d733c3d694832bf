"""One trial: the recipe plus the trial's parameters, trained into ``trial-NNNN/``, pruned on val AUC.

A trial is an ordinary ``chestxai train`` run (its folder holds config.yaml, checkpoint.pt,
history.csv...), so every later command works on it. After each epoch the loop hands over the
epoch's history row (:data:`chestxai.train.loop.EpochCallback`); the epoch's validation ROC-AUC is
reported to Optuna at ``step=epoch`` and the pruner decides whether to stop there. The trial's
value is the validation AUC of the checkpoint the run selected (its best epoch). Only val is
used: the test split is evaluated once, for the best trial, after the study.

Test hook: ``CHESTXAI_TUNE_FORCE_VALUE="TRIAL:EPOCH:VALUE[,...]"`` replaces the value reported by
trial TRIAL at EPOCH (e.g. ``"1:1:0.0"``), so tests can make the pruner's decision certain. It is
read in :func:`forced_value` only, and never set outside tests.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from chestxai.config import RunConfig, apply_values, config_from_dict
from chestxai.rundir import StudyDir

FORCE_ENV = "CHESTXAI_TUNE_FORCE_VALUE"
METRIC = "val_auc"


def forced_value(number: int, epoch: int) -> float | None:
    """The test hook's value for trial ``number`` at ``epoch``, or None (see the module docstring)."""
    spec = os.environ.get(FORCE_ENV, "").strip()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        try:
            trial, at, value = item.split(":")
            if int(trial) == number and int(at) == epoch:
                return float(value)
        except ValueError:
            raise ValueError(
                f"{FORCE_ENV}={spec!r}: each item must be TRIAL:EPOCH:VALUE, e.g. 1:1:0.0"
            ) from None
    return None


def trial_name(study_name: str, number: int) -> str:
    return f"{study_name}-trial-{number:04d}"


def trial_config(
    base: dict[str, Any], params: dict[str, Any], study: StudyDir, study_name: str, number: int
) -> RunConfig:
    """The recipe (``--set`` applied) with the trial's parameters, trained into ``trial-NNNN/``."""
    raw = apply_values(
        base, {**params, "name": trial_name(study_name, number), "run_dir": str(study.trial(number).root)}
    )
    return config_from_dict(raw, f"trial {number}")


@dataclass
class Outcome:
    """What a trial ended as: ``state`` is an Optuna state name; ``value`` None unless complete."""

    state: str
    value: float | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""
    reported: dict[int, float] = field(default_factory=dict)


def run_trial(trial: Any, config: RunConfig, on_epoch_done: Any = None) -> Outcome:
    """Train ``config`` for Optuna ``trial``; pruning stops the run after an epoch (its folder stays
    a complete run). Exceptions propagate (the caller marks the trial failed)."""
    from chestxai.train.loop import train

    reported: dict[int, float] = {}
    pruned, epochs = False, 0
    started = time.perf_counter()

    def on_epoch(row: dict) -> bool:
        nonlocal pruned, epochs
        epoch = epochs = int(row["epoch"])
        forced = forced_value(trial.number, epoch)
        value = float(row[METRIC]) if forced is None else forced
        if on_epoch_done is not None:
            on_epoch_done(epoch, value)
        if not math.isfinite(value):  # AUC undefined (one class in val): nothing to prune on
            return False
        reported[epoch] = value
        trial.report(value, step=epoch)
        pruned = trial.should_prune()
        return pruned

    train(config, resume=False, progress=False, on_epoch=on_epoch)
    seconds = time.perf_counter() - started
    if pruned:
        return Outcome("PRUNED", reported[epochs], epochs, seconds, reported=reported)
    if not reported:
        return Outcome(
            "FAIL",
            None,
            epochs,
            seconds,
            error="validation AUC undefined at every epoch (val has one class only)",
            reported=reported,
        )
    return Outcome("COMPLETE", max(reported.values()), epochs, seconds, reported=reported)

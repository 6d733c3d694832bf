"""One trial: the recipe plus the trial's parameters, trained into ``trial-NNNN/``, pruned on val AUC.

A trial is an ordinary ``chestxai train`` run (its folder holds config.yaml, checkpoint.pt,
history.csv...), so every later command works on it. After each epoch the loop hands over the
epoch's history row (:data:`chestxai.train.loop.EpochCallback`); the epoch's validation ROC-AUC is
reported to Optuna at ``step=epoch`` and the pruner decides whether to stop there. The trial's
value is the validation AUC of the checkpoint the run selected (its best epoch). Only val is
used: the test split is evaluated once, for the best trial, after the study.

What a trial reports for an epoch is one function, :func:`epoch_value` (the row's val AUC), looked
up when the epoch ends: a caller of :func:`run_trial` may pass another (``value_of``), and tests
replace it (monkeypatch) to make the pruner's decision certain -- no test hook in this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chestxai.config import RunConfig, apply_values, config_from_dict
from chestxai.rundir import StudyDir

METRIC = "val_auc"
#: ``(trial number, the epoch's history row) -> the value reported to Optuna for that epoch``
ValueOf = Callable[[int, dict[str, Any]], float]


def epoch_value(number: int, row: dict[str, Any]) -> float:
    """The value trial ``number`` reports for the epoch of history ``row``: its validation AUC."""
    return float(row[METRIC])


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


def run_trial(
    trial: Any, config: RunConfig, on_epoch_done: Any = None, value_of: ValueOf | None = None
) -> Outcome:
    """Train ``config`` for Optuna ``trial``; pruning stops the run after an epoch (its folder stays
    a complete run). ``value_of`` reads each epoch's value (default :func:`epoch_value`).
    Exceptions propagate (the caller marks the trial failed)."""
    from chestxai.train.loop import train

    value_of = value_of or epoch_value
    reported: dict[int, float] = {}
    pruned, epochs = False, 0
    started = time.perf_counter()

    def on_epoch(row: dict) -> bool:
        nonlocal pruned, epochs
        epoch = epochs = int(row["epoch"])
        value = float(value_of(trial.number, row))
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

"""TuneSettings: what ``chestxai tune`` runs, with each field's flag, help and range on the field.

``commands/tune.py`` generates its options from these fields (:mod:`chestxai.flags`), so a field
renamed here renames its flag, and its help and valid range are written once. This module imports
nothing heavy: the CLI reads it to build ``--help`` (no numpy, torch or Optuna).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chestxai.checks import check_run_name, parse_seed
from chestxai.flags import setting

PRUNERS = ("median", "halving", "none")


def _seed(text: str) -> int:
    return parse_seed(text, "--seed")


@dataclass
class TuneSettings:
    """One study. ``values``: recipe keys set by a dedicated flag for every trial (``train.device``);
    ``overrides``: ``--set KEY=VALUE`` texts; ``progress`` and ``n_boot`` come from the flags every
    command shares (``commands/_common.py``)."""

    recipe: str | None = setting(
        help="recipe: a YAML path or a shipped name (configs/)", flag="--config", parse=str
    )
    space: str = setting(help="search space YAML, or a shipped name (configs/spaces/)", flag="--space")
    trials: int = setting(help="trials in the study in total (a re-run continues)", flag="--trials")
    name: str = setting(help="study name (and folder runs/<name>/)", flag="--name", parse=check_run_name)
    run_dir: str | None = setting(
        None, help="study folder, when not runs/<name>", flag="--run-dir", parse=str
    )
    storage: str | None = setting(
        None,
        help="Optuna storage: a database URL (sqlite:///study.db, postgresql://...) or a journal file; "
        "none = RUN_DIR/study.journal",
        flag="--storage",
        parse=str,
    )
    overrides: list[str] = setting(factory=list, help="recipe overrides KEY=VALUE for every trial (--set)")
    values: dict[str, Any] = setting(factory=dict, help="recipe keys given by dedicated flags (train.device)")
    pruner: str = setting(
        "median",
        help="median: stop a trial whose val AUC at an epoch is below the median of earlier trials at that "
        "epoch; halving: successive halving; none",
        flag="--pruner",
        choices=PRUNERS,
    )
    startup_trials: int = setting(
        5,
        help="trials drawn at random and never pruned before TPE and the median rule start",
        flag="--startup-trials",
        bounds=">= 0",
    )
    timeout: float | None = setting(
        None, help="start no new trial after this many seconds", flag="--timeout", parse=float, bounds="> 0"
    )
    seed: int = setting(0, help="sampler (TPE) seed", flag="--seed", parse=_seed, bounds="in [0, 2**32)")
    progress: bool = setting(True, help="progress bars (--progress/--no-progress)")
    force: bool = setting(
        False, help="replace study.json/best.yaml/report.html not written by tune", flag="--force"
    )
    n_boot: int = setting(1000, help="bootstrap replicates for the test CI (--n-boot)")

    def check(self) -> None:
        check_run_name(self.name)
        if self.trials < 1:
            raise ValueError(f"--trials must be at least 1, got {self.trials}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"--pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.startup_trials < 0:
            raise ValueError(f"--startup-trials must be >= 0, got {self.startup_trials}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"--timeout must be a number of seconds > 0, got {self.timeout}")

"""File names of a hyper-parameter study (``chestxai tune``).

``runs/<name>/`` of ``chestxai tune --name NAME`` holds::

    study.json             every trial: number, state, params, value (val AUC), run directory
    best.yaml              the best trial's full config as a recipe (``chestxai train --config``)
    study.journal          Optuna's journal file storage (the default ``--storage``): resumable, shared
    space.yaml             the search space the study was started with (a re-run must match it)
    trial-0007/            each trial: an ordinary run directory
    figures/               optimisation history and parameter importances
    report.html
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chestxai.rundir.layout import RunDir


@dataclass(frozen=True)
class StudyDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def summary(self) -> Path:
        return RunDir(self.root).study

    @property
    def best_config(self) -> Path:
        return RunDir(self.root).best_config

    @property
    def journal(self) -> Path:
        return self.root / "study.journal"

    @property
    def space(self) -> Path:
        return self.root / "space.yaml"

    def trial(self, number: int) -> RunDir:
        return RunDir(self.root / f"trial-{int(number):04d}")

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report(self) -> Path:
        return RunDir(self.root).report

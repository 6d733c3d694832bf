"""File names of a hyper-parameter study (``chestxai tune``).

``runs/<name>/`` of ``chestxai tune --name NAME`` holds::

    study.json             every trial: number, state, params, value (val AUC), run directory
    best.yaml              the best trial's full config as a recipe (``chestxai train --config``)
    study.journal          Optuna's journal file storage (the default ``--storage``): resumable, shared
    space.yaml             the search space the study was started with (a re-run must match it)
    trial-0007/            each trial: an ordinary run directory
    figures/               optimisation history, per-epoch values and parameter importances
    report.html
    .study.lock            held briefly while a process asks for, claims or fails trials
    .claims/trial-0007/    locked by the process running trial 7 for as long as it runs
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
    def history_figure(self) -> Path:
        return self.figures / "optimisation_history.png"

    @property
    def intermediate_figure(self) -> Path:
        return self.figures / "intermediate_values.png"

    @property
    def importance_figure(self) -> Path:
        return self.figures / "param_importances.png"

    @property
    def lock(self) -> Path:
        """A short-lived mutex: asking for a trial number and claiming it happen under it."""
        return self.root / ".study.lock"

    def claim(self, number: int) -> Path:
        """The folder whose lock shows that trial ``number`` is still running somewhere."""
        return self.root / ".claims" / f"trial-{int(number):04d}"

    @property
    def report(self) -> Path:
        return RunDir(self.root).report

"""Hyper-parameter search over a recipe with Optuna (``chestxai tune``).

:mod:`~chestxai.tune.settings` holds the study's settings (the CLI's flags are generated from
them), :mod:`~chestxai.tune.space` reads and validates the search space,
:mod:`~chestxai.tune.objective` runs one trial as an ordinary training run,
:mod:`~chestxai.tune.study` runs the study (ask, claim, train, tell; resumable; shared by
processes through one storage), :mod:`~chestxai.tune.summary` writes ``study.json`` and
``best.yaml``. The report is :mod:`chestxai.report.tune`.

``run_study`` is loaded on first use: importing the settings (for ``chestxai --help``) must not
load the study's modules, which import numpy.
"""

from typing import Any

from chestxai.tune.settings import TuneSettings

__all__ = ["TuneSettings", "run_study"]


def __getattr__(name: str) -> Any:
    if name == "run_study":
        from chestxai.tune.study import run_study

        return run_study
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

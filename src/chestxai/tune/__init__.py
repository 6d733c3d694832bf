"""Hyper-parameter search over a recipe with Optuna (``chestxai tune``).

:mod:`~chestxai.tune.space` reads and validates the search space, :mod:`~chestxai.tune.objective`
runs one trial as an ordinary training run, :mod:`~chestxai.tune.study` runs the study (ask,
claim, train, tell; resumable; shared by processes through one storage),
:mod:`~chestxai.tune.summary` writes ``study.json`` and ``best.yaml``. The report is
:mod:`chestxai.report.tune`.
"""

from chestxai.tune.study import TuneSettings, run_study

__all__ = ["TuneSettings", "run_study"]

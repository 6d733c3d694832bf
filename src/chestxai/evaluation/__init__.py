"""Evaluation stages: score a trained run, write its predictions, metrics, figures and operating
thresholds, compare runs, measure their cost, and build ensembles from evaluated runs.

The arithmetic (metrics, bootstrap intervals, calibration, thresholds, significance tests,
curves, plots) lives one layer down in :mod:`chestxai.metrics`, which knows no models or run
directories; this package reads runs and caches, predicts, and writes files on top of it.

Entry points: :func:`evaluate_run` (a trained or ensemble run directory -> its split's
predictions, metrics, figures and ``thresholds.json``; names in :mod:`chestxai.rundir`),
:func:`evaluate_predictions` (arrays -> the metrics dict), :func:`compare_runs`, and
:func:`chestxai.evaluation.ensemble_runs.ensemble_runs` (evaluated runs -> an ensemble run).
Cache and split resolution for every stage: :mod:`chestxai.models.run_inputs`.
Importing this package does not import torch or matplotlib.
"""

from chestxai.evaluation.compare import compare_runs
from chestxai.evaluation.evaluate import evaluate_predictions, evaluate_run

__all__ = ["compare_runs", "evaluate_predictions", "evaluate_run"]

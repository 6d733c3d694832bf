"""Evaluation: metrics as pure functions over arrays, confidence intervals that resample
patients, operating thresholds, calibration, significance tests, and the figures of a run.

Entry points: :func:`evaluate_run` (a trained or ensemble run directory -> its split's
predictions, metrics, figures and ``thresholds.json``; names in :mod:`chestxai.rundir`),
:func:`evaluate_predictions` (arrays -> the metrics dict), :func:`compare_runs`, and
:func:`chestxai.evaluation.ensemble_runs.ensemble_runs` (evaluated runs -> an ensemble run).
Cache and split resolution for every stage: :mod:`chestxai.models.run_inputs`.
Importing this package does not import torch or matplotlib.
"""

from chestxai.evaluation.bootstrap import bootstrap_samples, percentile_interval, resample_weights
from chestxai.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from chestxai.evaluation.compare import compare_runs
from chestxai.evaluation.delong import delong_test
from chestxai.evaluation.evaluate import evaluate_predictions, evaluate_run
from chestxai.evaluation.metrics import MetricWarning, classification_metrics
from chestxai.evaluation.significance import paired_bootstrap_auc, per_class_delong
from chestxai.evaluation.thresholds import choose_threshold, choose_thresholds, parse_policy

__all__ = [
    "MetricWarning",
    "apply_temperature",
    "bootstrap_samples",
    "choose_threshold",
    "choose_thresholds",
    "classification_metrics",
    "compare_runs",
    "delong_test",
    "evaluate_predictions",
    "evaluate_run",
    "expected_calibration_error",
    "fit_temperature",
    "paired_bootstrap_auc",
    "parse_policy",
    "per_class_delong",
    "percentile_interval",
    "reliability_curve",
    "resample_weights",
]

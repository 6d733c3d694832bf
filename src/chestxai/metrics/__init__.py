"""Metric kernels: pure functions over probability and target arrays, below ``models``.

Classification metrics, patient-bootstrap intervals, calibration (temperature scaling, ECE,
reliability), operating-threshold policies, DeLong and paired-bootstrap significance, curves and
their plots, ensemble weights, and the task rules - among them :func:`decide`, the one decision
rule (temperature, thresholds, argmax) that evaluate, serve, export and the report all call.

Why a layer of its own: these modules import nothing but numpy/scipy/sklearn/pandas/matplotlib
and each other, so any layer (models, evaluation, serve, export, report) can use them, and the
import-linter contract checks that they never learn about models, caches or run directories.
Run-level stages that read and write files are in :mod:`chestxai.evaluation`.
Importing this package does not import torch or matplotlib.
"""

from chestxai.metrics.bootstrap import bootstrap_samples, percentile_interval, resample_weights
from chestxai.metrics.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from chestxai.metrics.classification import MetricWarning, classification_metrics
from chestxai.metrics.decisions import decide
from chestxai.metrics.delong import delong_test
from chestxai.metrics.significance import paired_bootstrap_auc, per_class_delong
from chestxai.metrics.threshold_policy import choose_threshold, choose_thresholds, parse_policy

__all__ = [
    "MetricWarning",
    "apply_temperature",
    "bootstrap_samples",
    "choose_threshold",
    "choose_thresholds",
    "classification_metrics",
    "decide",
    "delong_test",
    "expected_calibration_error",
    "fit_temperature",
    "paired_bootstrap_auc",
    "parse_policy",
    "per_class_delong",
    "percentile_interval",
    "reliability_curve",
    "resample_weights",
]

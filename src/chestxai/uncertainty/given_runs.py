"""Runs given together (``chestxai uncertainty A B C --method ensemble``): their own weights and thresholds.

An ensemble built with ``chestxai ensemble`` carries what it decides with: ``ensemble.json``
(weights fitted on validation log-loss) and ``thresholds.json`` (chosen on the ensemble's own
validation probabilities). Runs given together on the command line have neither; before, the
stage averaged them uniformly and decided at the *first member's* thresholds (and temperature), a
threshold the ensemble was never evaluated at. Here the same two fits ``chestxai ensemble`` makes
are made on the validation samples the stage draws anyway: the simplex weights minimising
validation log-loss (:func:`~chestxai.metrics.ensemble_weights.fit_weights`), then the thresholds
(``youden``, ``chestxai ensemble``'s default policy) on the weighted mean of those samples. No
temperature is applied: none was fitted for this ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chestxai.metrics.ensemble_weights import fit_weights
from chestxai.metrics.task_rules import uses_thresholds
from chestxai.metrics.threshold_policy import choose_thresholds
from chestxai.rundir.thresholds import OperatingThresholds
from chestxai.uncertainty.measures import summarize_samples

#: the policy the thresholds of runs given together are chosen with (``chestxai ensemble``'s default)
POLICY = "youden"
SOURCE = "chosen on val for the runs given together (youden, on their val-fitted weighted mean)"


@dataclass(frozen=True)
class GivenRunsFit:
    weights: list[float]  # on the simplex, one per member
    thresholds: OperatingThresholds
    val_log_loss: float
    member_val_log_loss: list[float]
    summary: dict[str, np.ndarray]  # the validation measures under ``weights`` (what the stage reports)


def no_validation_error(members: list[str]) -> ValueError:
    """What the stage raises, before any forward, when runs given together have no val rows."""
    return ValueError(
        f"runs given together ({', '.join(members)}) need validation images to fit their ensemble's "
        f"weights and thresholds, and their split has none; build the ensemble with "
        f"`chestxai ensemble RUN... --out DIR` and pass DIR instead"
    )


def fit_given_runs(
    samples: np.ndarray, targets: np.ndarray, task: str, label_names: list[str]
) -> GivenRunsFit:
    """Weights (validation log-loss) and thresholds (``youden`` on the weighted mean) from the
    members' validation probabilities ``samples`` (``K x N x L``, one sample per member)."""
    s = np.asarray(samples, dtype=np.float64)
    fit = fit_weights(list(s), targets, task)
    summary = summarize_samples(s, fit.weights)
    values = (
        choose_thresholds(summary["mean"], targets, task, label_names, POLICY)
        if uses_thresholds(task)
        else {}
    )
    return GivenRunsFit(
        [float(w) for w in fit.weights],
        OperatingThresholds(values, SOURCE, POLICY, None),
        fit.val_log_loss,
        [float(v) for v in fit.member_val_log_loss],
        {**summary, "samples": s, "deterministic": s[0]},
    )

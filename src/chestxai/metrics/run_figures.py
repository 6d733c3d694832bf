"""Which figures an evaluated run gets, under ``RUN/figures/`` (names are what the report shows)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.metrics import curves, plots
from chestxai.metrics.calibration import apply_temperature, calibration_pairs, reliability_curve
from chestxai.metrics.task_rules import uses_thresholds

log = logging.getLogger(__name__)

#: file name -> caption, in report order
FIGURES = {
    "roc.png": "ROC curve per class (operating point marked)",
    "pr.png": "Precision-recall curve per class (dashed: prevalence)",
    "confusion.png": "Confusion matrix at the chosen operating point",
    "reliability.png": "Reliability diagram before and after temperature scaling",
    "threshold_sweep.png": "Sensitivity, specificity and F1 against the threshold (validation choice dotted)",
    "confidence.png": "Confidence of right and wrong decisions",
    "training_curves.png": "Training curves (history.csv)",
}


def write_figures(
    out_dir: str | Path,
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    thresholds: dict[str, float] | None = None,
    temperature: float | None = None,
    history: pd.DataFrame | None = None,
    n_bins: int = 10,
) -> dict[str, Path]:
    """Write every figure for one evaluated split; returns ``{file name: path}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    th = np.array([thresholds[n] for n in label_names]) if thresholds and uses_thresholds(task) else None
    written: dict[str, Path] = {}

    roc = curves.roc_curves(probs, targets, task, label_names)
    matrices = curves.confusion_matrices(probs, targets, task, label_names, th)
    ops = None
    if th is not None:  # operating point = (1 - specificity, sensitivity) of each 2 x 2 matrix
        ops = {}
        for name, m in matrices.items():
            (tn, fp), (fn, tp) = m
            if tp + fn and tn + fp:
                ops[name] = (fp / (tn + fp), tp / (tp + fn))
    written["roc.png"] = plots.plot_roc(roc, out_dir / "roc.png", ops)
    written["pr.png"] = plots.plot_pr(curves.pr_curves(probs, targets, task, label_names), out_dir / "pr.png")
    written["confusion.png"] = plots.plot_confusion(matrices, label_names, out_dir / "confusion.png")

    p, o = calibration_pairs(probs, targets, task)
    rel = {"model": reliability_curve(p, o, n_bins)}
    if temperature is not None:
        p2, o2 = calibration_pairs(apply_temperature(probs, temperature, task), targets, task)
        rel[f"temperature-scaled (T={temperature:.2f})"] = reliability_curve(p2, o2, n_bins)
    xlabel = "top-label confidence" if task == "multiclass" else "predicted probability"
    written["reliability.png"] = plots.plot_reliability(rel, out_dir / "reliability.png", xlabel)

    sweeps = curves.threshold_sweeps(probs, targets, task, label_names)
    written["threshold_sweep.png"] = plots.plot_threshold_sweep(
        sweeps, out_dir / "threshold_sweep.png", thresholds if th is not None else None
    )
    conf, correct = curves.confidence_by_correctness(probs, targets, task, th)
    written["confidence.png"] = plots.plot_confidence_histograms(conf, correct, out_dir / "confidence.png")
    if history is not None and len(history):
        written["training_curves.png"] = plots.plot_history(history, out_dir / "training_curves.png")
    log.info("wrote %d figures to %s", len(written), out_dir)
    return written

"""The figures of a comparison: every run on one axis where the eye must compare them.

* ``roc``: ROC curves of all runs, one panel per class (multi-class: one-vs-rest).
* ``metrics``: ROC-AUC, accuracy, sensitivity and specificity (macro) as bars with their 95%
  bootstrap intervals from each run's ``metrics.json``.
* ``thresholds``: sensitivity (solid) and specificity (dashed) against the threshold, all runs
  per panel, one panel per class, each run's chosen operating threshold dotted.
* ``confidence``: per run, histograms of the predicted probability of the decided class for
  right and wrong decisions (overconfident models pile their wrong decisions near 1).

The numbers come from :mod:`chestxai.metrics.curves` (the same as a run's own figures);
drawing reuses the grid of :mod:`chestxai.metrics.plots` (Agg ``Figure``, no pyplot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chestxai.metrics import curves
from chestxai.metrics.plots import DPI, empty_panel, grid, save_figure
from chestxai.metrics.task_rules import uses_thresholds

#: figure key -> caption, in report order (files are ``<OUT>_<key>.png``)
FIGURES = {
    "roc": "ROC curves of every run, one panel per class (AUC in the legend; multi-class: one-vs-rest)",
    "metrics": "Macro ROC-AUC, accuracy, sensitivity and specificity with 95% bootstrap intervals",
    "thresholds": (
        "Threshold analysis: sensitivity (solid) and specificity (dashed) against the threshold, "
        "each run's chosen operating threshold dotted"
    ),
    "confidence": (
        "Confidence of right and wrong decisions per run: predicted probability of the decided class"
    ),
}
#: metrics.json key -> bar label
BAR_METRICS = {
    "roc_auc": "ROC-AUC",
    "accuracy": "accuracy",
    "recall": "sensitivity",
    "specificity": "specificity",
}


@dataclass
class RunCurves:
    """What one run contributes to the figures (predictions aligned to the reference run)."""

    name: str
    probs: np.ndarray  # N x L
    targets: np.ndarray  # N x L (NaN = unknown)
    thresholds: dict[str, float] | None  # chosen operating thresholds (None: argmax decisions)
    bars: dict[str, dict | None]  # BAR_METRICS key -> {"value", "ci"} from metrics.json


def figure_paths(out: str | Path) -> dict[str, Path]:
    """``{key: <out>_<key>.png}`` for every figure of a comparison with path prefix ``out``."""
    return {key: Path(f"{out}_{key}.png") for key in FIGURES}


def _color(i: int) -> str:
    return f"C{i % 10}"


def plot_roc_overlay(runs: list[RunCurves], task: str, label_names: list[str], path: Path) -> Path:
    per_run = [curves.roc_curves(r.probs, r.targets, task, label_names) for r in runs]
    fig, axes = grid(len(label_names), panel=4.5 if len(label_names) == 1 else 3.2)
    for ax, name in zip(axes, label_names, strict=True):
        if all(roc[name] is None for roc in per_run):
            empty_panel(ax, name, "undefined: no positives or no negatives")
            continue
        for i, (run, roc) in enumerate(zip(runs, per_run, strict=True)):
            c = roc[name]
            if c is not None:
                ax.plot(c["fpr"], c["tpr"], lw=1.3, color=_color(i), label=f"{run.name} ({c['auc']:.3f})")
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="sensitivity")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="lower right", fontsize=6)
    return save_figure(fig, path)


def plot_metric_bars(runs: list[RunCurves], path: Path) -> Path:
    """Grouped bars: one group per metric, one bar per run, the CI as an error bar."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 0.45 * len(BAR_METRICS) * max(1, len(runs)) + 2.0), 3.8), dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.12, top=0.95)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(BAR_METRICS))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        values, low, high = [], [], []
        for key in BAR_METRICS:
            entry = run.bars.get(key) or {}
            v = entry.get("value")
            lo, hi = (entry.get("ci") or [None, None])[:2]
            values.append(np.nan if v is None else float(v))
            low.append(0.0 if v is None or lo is None else float(v) - float(lo))
            high.append(0.0 if v is None or hi is None else float(hi) - float(v))
        ax.bar(
            x + (i - (len(runs) - 1) / 2) * width,
            values,
            width,
            yerr=[low, high],
            capsize=2,
            color=_color(i),
            label=run.name,
        )
    ax.set_xticks(x, list(BAR_METRICS.values()), fontsize=8)
    ax.set(ylim=(0, 1.18), ylabel="macro average (95% CI)")
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=7, loc="upper center", ncols=min(len(runs), 5), frameon=False)
    return save_figure(fig, path)


def plot_threshold_overlay(runs: list[RunCurves], task: str, label_names: list[str], path: Path) -> Path:
    per_run = [curves.threshold_sweeps(r.probs, r.targets, task, label_names) for r in runs]
    fig, axes = grid(len(label_names), panel=4.5 if len(label_names) == 1 else 3.2)
    for ax, name in zip(axes, label_names, strict=True):
        for i, (run, sweeps) in enumerate(zip(runs, per_run, strict=True)):
            sw = sweeps[name]
            ax.plot(sw["threshold"], sw["sensitivity"], lw=1.2, color=_color(i), label=f"{run.name}")
            ax.plot(sw["threshold"], sw["specificity"], lw=1.2, ls="--", color=_color(i))
            t = (run.thresholds or {}).get(name)
            if t is not None:
                ax.axvline(float(t), ls=":", lw=1, color=_color(i))
        ax.plot([], [], color="black", lw=1.2, label="sensitivity")
        ax.plot([], [], color="black", lw=1.2, ls="--", label="specificity")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="threshold", ylabel="sensitivity / specificity")
        ax.set_title(
            name if uses_thresholds(task) else f"{name} (one-vs-rest; decisions are argmax)", fontsize=8
        )
        ax.legend(fontsize=6, loc="center right")
    return save_figure(fig, path)


def plot_confidence_per_run(runs: list[RunCurves], task: str, label_names: list[str], path: Path) -> Path:
    fig, axes = grid(len(runs), panel=3.4)
    bins = np.linspace(0.0, 1.0, 21)
    for ax, run in zip(axes, runs, strict=True):
        th = None
        if run.thresholds and uses_thresholds(task):
            th = np.array([run.thresholds.get(n, 0.5) for n in label_names], dtype=np.float64)
        conf, correct = curves.confidence_by_correctness(run.probs, run.targets, task, th)
        correct = np.asarray(correct, bool)
        if not len(conf):
            empty_panel(ax, run.name, "no decisions with a known target")
            continue
        ax.hist(conf[correct], bins=bins, alpha=0.6, color="C2", label=f"right (n={int(correct.sum())})")
        ax.hist(conf[~correct], bins=bins, alpha=0.6, color="C3", label=f"wrong (n={int((~correct).sum())})")
        ax.set(xlim=(0, 1), xlabel="probability of the decided class", ylabel="decisions")
        ax.set_title(run.name, fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
    return save_figure(fig, path)


def write_compare_figures(
    out: str | Path, runs: list[RunCurves], task: str, label_names: list[str]
) -> dict[str, Path]:
    """Write the four figures as ``<out>_<key>.png``; returns ``{key: path}`` in :data:`FIGURES` order."""
    paths = figure_paths(out)
    return {
        "roc": plot_roc_overlay(runs, task, label_names, paths["roc"]),
        "metrics": plot_metric_bars(runs, paths["metrics"]),
        "thresholds": plot_threshold_overlay(runs, task, label_names, paths["thresholds"]),
        "confidence": plot_confidence_per_run(runs, task, label_names, paths["confidence"]),
    }

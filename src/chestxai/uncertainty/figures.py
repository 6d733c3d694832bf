"""The uncertainty stage's figures, drawn from numbers already computed (uncertainty.json).

matplotlib through ``matplotlib.figure.Figure`` (Agg canvas, no ``pyplot`` global state),
imported inside the functions; the reliability diagram and saving reuse :mod:`chestxai.metrics.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chestxai.metrics.plots import DPI, plot_reliability, save_figure

#: file name and caption of every figure, in report order
FIGURES = {
    "referral.png": "Referral curves: metrics of the retained cases as the most uncertain are referred "
    "(bands: 95% patient-bootstrap CI)",
    "risk_coverage.png": "Risk-coverage: error rate of the accepted cases against coverage",
    "confidence_correctness.png": "Uncertainty of right and wrong decisions (multi-label: an image is right "
    "only when every one of its known labels is, i.e. exact match; the legend says so)",
    "reliability.png": "Reliability of the averaged probabilities beside the single deterministic model",
}
_BASELINE_STYLE = {"random": ":", "confidence": "--", "oracle": "-."}


def _figure(cols: int, panel: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel * cols, panel), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9, wspace=0.3)
    return fig, fig.subplots(1, cols, squeeze=False).ravel()


def plot_referral(referral: dict[str, list[dict]], path: Path) -> Path:
    """ROC-AUC, accuracy, sensitivity and specificity of the retained cases per ranking."""
    keys = ("roc_auc", "accuracy", "sensitivity", "specificity")
    fig, axes = _figure(len(keys), panel=3.4)
    for ax, key in zip(axes, keys, strict=True):
        for name, rows in referral.items():
            f = np.array([r["fraction"] for r in rows]) * 100
            v = np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)
            lo = np.array([np.nan if r["ci"][key][0] is None else r["ci"][key][0] for r in rows], dtype=float)
            hi = np.array([np.nan if r["ci"][key][1] is None else r["ci"][key][1] for r in rows], dtype=float)
            (line,) = ax.plot(f, v, _BASELINE_STYLE.get(name, "-"), lw=1.4, label=name)
            if name not in ("oracle",):
                ax.fill_between(f, lo, hi, color=line.get_color(), alpha=0.12, lw=0)
        ax.set(xlabel="referred (%)", title=key.replace("_", "-"))
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_risk_coverage(curves: dict[str, dict], aurc: dict[str, float], path: Path) -> Path:
    fig, (ax,) = _figure(1, panel=4.4)
    for name, c in curves.items():
        a = aurc.get(name)
        label = f"{name} (AURC {a:.3f})" if a is not None and np.isfinite(a) else name
        ax.plot(c["coverage"], c["selective_risk"], _BASELINE_STYLE.get(name, "-"), lw=1.3, label=label)
    ax.set(xlabel="coverage (share of cases accepted)", ylabel="selective risk (error rate)", xlim=(0, 1))
    ax.legend(fontsize=7)
    return save_figure(fig, path)


#: what "correct" means per task in the histogram's legend (multi-label: exact match over the labels)
CORRECT_LEGEND = {
    "multilabel": ("every label right", "some label wrong"),
    "binary": ("correct", "wrong"),
    "multiclass": ("correct (argmax)", "wrong (argmax)"),
}


def plot_confidence_correctness(
    uncertainty: dict[str, np.ndarray], correct: np.ndarray, path: Path, task: str = "binary"
) -> Path:
    """One histogram panel per measure: right decisions should sit at low uncertainty. For a
    multi-label task an image counts as right only when all its known labels are (exact match), and
    the legend says so: "correct (n=0)" would hide that no image got all 8 labels right."""
    fig, axes = _figure(len(uncertainty), panel=3.4)
    correct = np.asarray(correct, bool)
    right, wrong = CORRECT_LEGEND.get(task, CORRECT_LEGEND["binary"])
    for ax, (name, u) in zip(axes, uncertainty.items(), strict=True):
        u = np.asarray(u, float)
        bins = np.linspace(np.nanmin(u), np.nanmax(u) + 1e-12, 21) if len(u) else 10
        ax.hist(u[correct], bins=bins, alpha=0.6, label=f"{right} (n={int(correct.sum())})")
        ax.hist(u[~correct], bins=bins, alpha=0.6, label=f"{wrong} (n={int((~correct).sum())})")
        ax.set(xlabel=name, ylabel="images")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def write_figures(summary: dict, curves: dict, uncertainty: dict, correct: np.ndarray, out_dir: Path) -> dict:
    """All figures into ``out_dir``; returns ``{file name: path}``."""
    out_dir = Path(out_dir)
    cal = summary["calibration"]
    rel = {
        f"{summary['method']} mean (ECE {cal['mean']['ece']:.3f})": cal["mean"]["reliability"],
        f"deterministic (ECE {cal['deterministic']['ece']:.3f})": cal["deterministic"]["reliability"],
    }
    return {
        "referral.png": plot_referral(summary["referral"], out_dir / "referral.png"),
        "risk_coverage.png": plot_risk_coverage(curves, summary["aurc"], out_dir / "risk_coverage.png"),
        "confidence_correctness.png": plot_confidence_correctness(
            uncertainty, correct, out_dir / "confidence_correctness.png", summary.get("task", "binary")
        ),
        "reliability.png": plot_reliability(rel, out_dir / "reliability.png"),
    }

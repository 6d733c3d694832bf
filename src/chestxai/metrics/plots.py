"""Drawing only: each function takes precomputed numbers (:mod:`chestxai.metrics.curves`) and
writes one PNG.

matplotlib is imported inside the functions and used through ``matplotlib.figure.Figure``
(the Agg canvas, no ``pyplot``): no display is needed and no global backend state is changed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

DPI = 100


def grid(n: int, panel: float = 3.2, max_cols: int = 4):
    from matplotlib.figure import Figure

    cols = max(1, min(n, max_cols))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(panel * cols, panel * rows), dpi=DPI)
    # fixed spacing: constrained layout costs seconds for a 14-panel grid
    fig.subplots_adjust(
        left=0.45 / (panel * cols) + 0.04,
        right=0.97,
        bottom=0.5 / (panel * rows) + 0.03,
        top=1 - 0.3 / (panel * rows),
        wspace=0.35,
        hspace=0.45,
    )
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def save_figure(fig, path: Path, dpi: int = DPI) -> Path:
    """Write ``fig`` (a ``matplotlib.figure.Figure``, no pyplot) to ``path`` as PNG, making its
    folder: the one way every stage (evaluate, compare, uncertainty, the reports) saves a figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def empty_panel(ax, name: str, why: str) -> None:
    ax.set_title(name, fontsize=9)
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=8, wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_roc(curves: dict, path: Path, operating_points: dict | None = None) -> Path:
    """One ROC panel per class; the chosen operating point (1 - specificity, sensitivity) marked."""
    fig, axes = grid(len(curves))
    for ax, (name, c) in zip(axes, curves.items(), strict=True):
        if c is None:
            empty_panel(ax, name, "undefined: no positives or no negatives")
            continue
        ax.plot(c["fpr"], c["tpr"], lw=1.5, label=f"AUC {c['auc']:.3f}")
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        op = (operating_points or {}).get(name)
        if op is not None:
            ax.plot([op[0]], [op[1]], "o", color="crimson", label="operating point")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="sensitivity")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="lower right", fontsize=7)
    return save_figure(fig, path)


def plot_pr(curves: dict, path: Path) -> Path:
    """One precision-recall panel per class, with the prevalence (a random model) dashed."""
    fig, axes = grid(len(curves))
    for ax, (name, c) in zip(axes, curves.items(), strict=True):
        if c is None:
            empty_panel(ax, name, "undefined: no positives")
            continue
        ax.step(c["recall"], c["precision"], where="post", lw=1.5, label=f"AP {c['ap']:.3f}")
        ax.axhline(c["prevalence"], ls="--", lw=0.8, color="grey")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="lower left", fontsize=7)
    return save_figure(fig, path)


def plot_confusion(matrices: dict, label_names: list[str], path: Path) -> Path:
    """A ``C x C`` matrix (multi-class) or one ``2 x 2`` matrix per class, with counts written in."""
    if "all" in matrices:
        n = len(label_names)
        fig, axes = grid(1, panel=max(3.5, 0.6 * n + 2))
        items = [("predicted vs true", matrices["all"], label_names)]
    else:
        fig, axes = grid(len(matrices), panel=2.6)
        items = [(name, m, ["neg", "pos"]) for name, m in matrices.items()]
    for ax, (title, m, ticks) in zip(axes, items, strict=True):
        m = np.asarray(m)
        ax.imshow(m, cmap="Blues")
        top = m.max() if m.size else 0
        for (i, j), v in np.ndenumerate(m):
            ax.text(
                j,
                i,
                str(int(v)),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v > top / 2 else "black",
            )
        ax.set_xticks(range(len(ticks)), ticks, rotation=45 if len(ticks) > 2 else 0, fontsize=7)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=7)
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def plot_reliability(curves: dict[str, dict], path: Path, xlabel: str = "predicted probability") -> Path:
    """Reliability diagram: observed frequency per bin against mean prediction, one line per
    curve (e.g. ``{"raw (ECE 0.08)": ..., "temperature-scaled (ECE 0.03)": ...}``)."""
    fig, (ax,) = grid(1, panel=4.2)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="perfect")
    for name, c in curves.items():
        x, y = np.asarray(c["mean_predicted"], float), np.asarray(c["observed_frequency"], float)
        ok = ~np.isnan(x) & ~np.isnan(y)
        ax.plot(x[ok], y[ok], "o-", ms=4, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel="observed frequency")
    ax.legend(loc="upper left", fontsize=7)
    return save_figure(fig, path)


def plot_threshold_sweep(sweeps: dict, path: Path, thresholds: dict | None = None) -> Path:
    """Sensitivity, specificity and F1 against the threshold per class; the chosen one dotted."""
    fig, axes = grid(len(sweeps))
    for ax, (name, sw) in zip(axes, sweeps.items(), strict=True):
        for key in ("sensitivity", "specificity", "f1"):
            ax.plot(sw["threshold"], sw[key], lw=1.2, label=key)
        t = (thresholds or {}).get(name)
        if t is not None:
            ax.axvline(t, ls=":", color="black", lw=1, label=f"chosen {t:.2f}")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="threshold")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6, loc="lower center")
    return save_figure(fig, path)


def plot_confidence_histograms(confidence: np.ndarray, correct: np.ndarray, path: Path) -> Path:
    """Histograms of decision confidence for right and wrong decisions (overconfidence shows as
    wrong decisions piling up near 1)."""
    fig, (ax,) = grid(1, panel=4.2)
    bins = np.linspace(0.0, 1.0, 21)
    correct = np.asarray(correct, bool)
    ax.hist(confidence[correct], bins=bins, alpha=0.6, label=f"correct (n={int(correct.sum())})")
    ax.hist(confidence[~correct], bins=bins, alpha=0.6, label=f"wrong (n={int((~correct).sum())})")
    ax.set(xlabel="confidence in the decision", ylabel="count")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


#: history.csv columns that are not curves: the x axis and the selection flag (drawn as a mark)
NOT_CURVES = ("epoch", "best")


def history_groups(history: pd.DataFrame) -> dict[str, list[str]]:
    """Numeric history columns grouped by quantity: ``train_loss`` and ``val_loss`` share "loss".
    ``best`` (1 where the epoch improved the monitored metric) and boolean columns are not curves."""
    groups: dict[str, list[str]] = {}
    for col in history.columns:
        kind = history[col].dtype
        if col in NOT_CURVES or not pd.api.types.is_numeric_dtype(kind) or pd.api.types.is_bool_dtype(kind):
            continue
        key = col
        for prefix in ("train_", "val_", "valid_", "test_"):
            if col.startswith(prefix):
                key = col[len(prefix) :]
                break
        groups.setdefault(key, []).append(col)
    return groups


def selected_epoch(history: pd.DataFrame) -> tuple[float, str] | None:
    """(epoch, rule) of the checkpoint training kept: the last epoch flagged ``best`` (each flag
    marks an improvement of ``selected_on``); None without a ``best`` column or flag."""
    if "best" not in history.columns:
        return None
    flagged = history[pd.to_numeric(history["best"], errors="coerce").fillna(0).astype(bool)]
    if not len(flagged):
        return None
    row = flagged.iloc[-1]
    epoch = row["epoch"] if "epoch" in history.columns else flagged.index[-1] + 1
    rule = str(row["selected_on"]) if "selected_on" in history.columns else ""
    return float(epoch), rule


def history_figure(history: pd.DataFrame):
    """The training-curve figure: one panel per quantity, the selected epoch marked on each."""
    groups = history_groups(history)
    x = history["epoch"] if "epoch" in history.columns else pd.Series(range(1, len(history) + 1))
    fig, axes = grid(max(len(groups), 1))
    if not groups:
        empty_panel(axes[0], "history", "no numeric columns")
    selected = selected_epoch(history)
    for ax, (key, cols) in zip(axes, groups.items(), strict=False):
        for col in cols:
            ax.plot(x, history[col], "o-", ms=3, lw=1.2, label=col)
        if selected is not None:
            epoch, rule = selected
            label = f"selected: epoch {epoch:g}" + (f" (best {rule})" if rule else "")
            ax.axvline(epoch, color="0.3", ls="--", lw=1, label=label, gid="selected-epoch")
        ax.set(xlabel="epoch")
        ax.set_title(key, fontsize=9)
        ax.legend(fontsize=7)
    return fig


def plot_history(history: pd.DataFrame, path: Path) -> Path:
    """Training curves: one panel per quantity in ``history.csv``, against the epoch; the epoch
    whose checkpoint training kept (the last ``best`` one) is a dashed line on every panel."""
    return save_figure(history_figure(history), path)

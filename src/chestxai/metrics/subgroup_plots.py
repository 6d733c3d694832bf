"""The subgroup figure: per attribute, each finding's ROC-AUC per group with its bootstrap interval.

Drawing only, over the ``subgroups`` entry of ``metrics.json``
(:func:`chestxai.metrics.subgroups.subgroup_metrics`); matplotlib through ``Figure`` as in
:mod:`chestxai.metrics.plots`. A group that is "too few" for a finding gets no marker (a point
without an honest interval would read as a result); the caption says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chestxai.metrics.plots import grid, save_figure


def plot_subgroup_auroc(subgroups: dict, path: Path) -> Path:
    """One panel per attribute: findings down the y axis, ROC-AUC [CI] of each group across."""
    attributes = subgroups["attributes"]
    n_findings = max((len(a["findings"]) for a in attributes.values()), default=1)
    fig, axes = grid(len(attributes), panel=max(3.2, 0.32 * n_findings + 1.2), max_cols=3)
    for ax, (attr, a) in zip(axes, attributes.items(), strict=True):
        findings, groups = list(a["findings"]), list(a["groups"])
        step = 0.8 / max(len(groups), 1)
        colors = [f"C{i % 10}" for i in range(len(groups))]
        for k, (g, color) in enumerate(zip(groups, colors, strict=True)):
            ys, xs, lo, hi = [], [], [], []
            for i, finding in enumerate(findings):
                e = a["findings"][finding]["groups"].get(g, {})
                auc = e.get("roc_auc") if e.get("status") == "scored" else None
                if auc and auc["value"] is not None:
                    ci = [c if c is not None else auc["value"] for c in auc["ci"]]
                    ys.append(i - 0.4 + step * (k + 0.5))
                    xs.append(auc["value"])
                    lo.append(auc["value"] - ci[0])
                    hi.append(ci[1] - auc["value"])
            label = f"{g} (n={a['groups'][g]['n_images']})"
            if xs:
                ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", ms=3, lw=1, color=color, label=label)
            else:
                ax.plot([], [], "o", ms=3, color=color, label=label + ": too few")
        ax.axvline(0.5, ls="--", lw=0.8, color="grey")
        ax.set_yticks(np.arange(len(findings)))
        ax.set_yticklabels(findings, fontsize=7)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1), xlabel="ROC-AUC [95% CI]")
        ax.set_title(f"by {attr}", fontsize=9)
        ax.legend(loc="lower left", fontsize=6)
    cols = min(len(attributes), 3)
    fig.subplots_adjust(left=0.12 if cols > 1 else 0.3, wspace=0.75)  # room for finding names per panel
    return save_figure(fig, path)

"""The comparison report: one self-contained ``OUT.html`` for ``chestxai compare`` (and
``chestxai experiment``), built from a :class:`~chestxai.evaluation.compare.Comparison`.

Same building blocks as the run report (:mod:`chestxai.report.html`, every figure embedded, no
network): runs, metrics with CIs and p-values against the first run, the cost table with the
machine its speeds were measured on, per-class ROC-AUC, and the four comparison figures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.atomic import write_text
from chestxai.evaluation.compare import (
    COST_NOTE,
    MULTIPLICITY_NOTE,
    SUMMARY_METRICS,
    Comparison,
    compare_runs,
    cost_table,
    html_path,
    speed_lines,
)
from chestxai.metrics.compare_plots import FIGURES, write_compare_figures
from chestxai.metrics.significance import format_p
from chestxai.report.html import GENERATOR, esc, figure, page, paragraph, table
from chestxai.report.sections import METRIC_TITLES, disclaimer, fmt_ci
from chestxai.rundir.guard import check_overwrite, has_marker

log = logging.getLogger(__name__)


def _entry(row: dict, key: str) -> dict | None:
    """A summary row's metric back in metrics.json form, for :func:`fmt_ci`."""
    v = row.get(key)
    if v is None or not np.isfinite(v):
        return None
    lo, hi = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    ci = [lo, hi] if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi) else None
    return {"value": v, "ci": ci}


def _p(row: dict) -> str:
    boot = row.get("p_bootstrap_macro_auc")
    if boot is None or not np.isfinite(boot):
        return "reference"
    delong = row.get("p_delong")
    text = f"bootstrap {format_p(boot)} (macro AUC {row['delta_macro_auc']:+.3f})"
    return f"DeLong {format_p(delong)}; {text}" if delong is not None and np.isfinite(delong) else text


def title_for(comparison: Comparison) -> str:
    names = [r.name for r in comparison.runs]
    shown = " vs ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"chestxai comparison: {shown}"


def runs_section(comparison: Comparison) -> str:
    rows = comparison.summary.to_dict("records")
    body = [
        (r.name, str(r.run.root), row["model"], row["train_device"], row["n_images"])
        for r, row in zip(comparison.runs, rows, strict=True)
    ]
    out = paragraph(
        f"Task {comparison.task}, labels {', '.join(comparison.label_names)}; every run evaluated on the same "
        f"{comparison.split} images. The first run is the reference of the p-values."
    )
    return out + table(["run", "directory", "model", "trained on", "images"], body)


def metrics_section(comparison: Comparison) -> str:
    rows = comparison.summary.to_dict("records")
    keys = [k for k in SUMMARY_METRICS if k in comparison.summary.columns]
    header = ["run", "model", *(METRIC_TITLES.get(k, k) for k in keys), "p vs first (ROC-AUC)"]
    body = [[row["run"], row["model"], *(fmt_ci(_entry(row, k)) for k in keys), _p(row)] for row in rows]
    note = paragraph(
        "Macro averages (accuracy: overall) with 95% bootstrap intervals from each run's metrics.json; "
        "p-values test the ROC-AUC difference to the first run on the same images (DeLong for a "
        "single output; paired patient-level bootstrap of the macro AUC)."
    )
    return note + table(header, body, f"Metrics on the {comparison.split} split")


def cost_section(comparison: Comparison) -> str:
    shown = cost_table(comparison.summary)
    out = table(list(shown.columns), shown.astype(str).to_numpy().tolist(), "What each run cost")
    out += paragraph(COST_NOTE, "note")
    out += "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in speed_lines(comparison.summary)) + "</ul>"
    return out


def per_class_section(comparison: Comparison) -> str:
    pc = comparison.per_class
    names = [r.name for r in comparison.runs]
    body = []
    for label in comparison.label_names:
        cells: list[Any] = [label]
        for name in names:
            r = pc[(pc["run"] == name) & (pc["label"] == label)].iloc[0]
            text = (
                fmt_ci({"value": r.roc_auc, "ci": [r.ci_low, r.ci_high]}) if np.isfinite(r.roc_auc) else "n/a"
            )
            if np.isfinite(r.p_delong_vs_first):
                holm = getattr(r, "p_delong_holm_vs_first", np.nan)
                adjusted = (
                    f", Holm {format_p(holm)}"
                    if len(comparison.label_names) > 1 and np.isfinite(holm)
                    else ""
                )
                text += f" (p {format_p(r.p_delong_vs_first)}{adjusted})"
            cells.append(text)
        body.append(cells)
    out = table(["label", *names], body, "ROC-AUC per class [95% CI] (DeLong p against the first run)")
    return out + (paragraph(MULTIPLICITY_NOTE, "note") if len(comparison.label_names) > 1 else "")


def figures_section(figures: dict[str, Path]) -> str:
    items = "".join(figure(path, FIGURES.get(key, key), alt=key) for key, path in figures.items())
    return f'<div class="figures">{items}</div>'


def write_compare_report(
    comparison: Comparison, path: str | Path | None = None, force: bool = False, title: str | None = None
) -> Path:
    """Write the comparison's HTML (default ``<out>.html``) and return its path; the figures are
    the ones ``compare_runs(out=...)`` wrote, drawn next to the page when it wrote none. An
    existing file is replaced only if this module wrote it or ``force``."""
    if path is None:
        if comparison.out is None:
            raise ValueError("the comparison was made without out=...; give the report a path")
        path = html_path(comparison.out)
    path = check_overwrite(Path(path), force, has_marker(GENERATOR), "comparison report")
    figures = comparison.figures or write_compare_figures(
        path.with_suffix(""), comparison.curves(), comparison.task, comparison.label_names
    )
    parts = [
        ("runs", "Runs", runs_section(comparison)),
        ("metrics", "Metrics", metrics_section(comparison)),
        ("cost", "Cost", cost_section(comparison)),
        ("per-class", "ROC-AUC per class", per_class_section(comparison)),
        ("figures", "Figures", figures_section(figures)),
        ("disclaimer", "Intended use", disclaimer()),
    ]
    header = disclaimer() + paragraph(
        f"{len(comparison.runs)} runs on the {comparison.split} split "
        f"({int(comparison.summary['n_images'].iloc[0])} images)."
    )
    write_text(path, page(title or title_for(comparison), parts, header=header))
    comparison.report = path
    if path not in comparison.paths:
        comparison.paths.append(path)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def compare_and_report(
    run_dirs: list[str | Path], out: str | Path, title: str | None = None, **kwargs: Any
) -> Comparison:
    """``compare_runs(run_dirs, out=out, **kwargs)`` and its HTML report ``<out>.html``: the one
    call ``chestxai compare`` and ``chestxai experiment`` make. ``compare_runs`` has already
    refused an existing ``<out>.html`` (unless ``force``), so the page is written without a
    second check."""
    comparison = compare_runs(run_dirs, out=out, **kwargs)
    write_compare_report(comparison, force=True, title=title)
    return comparison

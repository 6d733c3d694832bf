"""``build_report``: one self-contained ``report.html`` per run (every image embedded, no
network, no other file), so it can be mailed, archived or opened years later."""

from __future__ import annotations

import logging
from pathlib import Path

from chestxai.atomic import write_text
from chestxai.evaluation.jsonio import read_json
from chestxai.report import gallery, sections
from chestxai.report.html import page
from chestxai.rundir import RunDir

log = logging.getLogger(__name__)


def _checkpoint(run: RunDir) -> dict | None:
    if not run.checkpoint.exists():
        return None
    from chestxai.models.checkpoint import read_checkpoint

    return read_checkpoint(run.checkpoint)


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``RUN/report.html`` (or ``out``) and return its path.

    Sections: dataset, configuration, training curves, metrics with CIs, figures and, when the
    run has explanations (``RUN/cams/index.csv``, ``RUN/explain_metrics.json``), a gallery of
    true/false positives/negatives with heatmaps and the localization table. Missing inputs
    become short notes, so a report can be built at any stage.
    """
    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise FileNotFoundError(f"run directory {run.root} does not exist")
    if not run.checkpoint.exists() and not run.metrics.exists():
        raise FileNotFoundError(
            f"{run.root} has neither checkpoint.pt nor metrics.json: is it a run directory? "
            f"Train with `chestxai train` and evaluate with `chestxai evaluate {run.root}`"
        )
    metrics = read_json(run.metrics) if run.metrics.exists() else None
    ckpt = _checkpoint(run)
    parts = [
        ("dataset", "Dataset", sections.dataset_section(run, metrics, ckpt)),
        ("config", "Configuration", sections.config_section(run, ckpt)),
        ("training", "Training curves", sections.curves_section(run)),
        ("metrics", "Metrics", sections.metrics_section(metrics)),
        ("figures", "Figures", sections.figures_section(run)),
    ]
    if gallery.has_explanations(run):
        parts.append(("explanations", "Explanations", gallery.gallery_section(run, metrics)))
        parts.append(("localization", "Localization", gallery.localization_section(run)))
    parts.append(("disclaimer", "Intended use", sections.disclaimer()))
    html_text = page(
        f"chestxai report: {run.root.name}", parts, header=sections.summary_header(run, metrics, ckpt)
    )
    path = Path(out) if out is not None else run.report
    write_text(path, html_text)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path

"""``build_report``: one self-contained ``report.html`` per run (every image embedded, no
network, no other file), so it can be mailed, archived or opened years later."""

from __future__ import annotations

import logging
from pathlib import Path

from chestxai.atomic import write_text
from chestxai.models.trained_run import TrainedRun
from chestxai.report import gallery, scorecard, sections, site_shift, subgroups, uncertainty
from chestxai.report.html import GENERATOR, page, paragraph, table
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble
from chestxai.rundir.guard import check_overwrite, has_marker
from chestxai.rundir.jsonfile import read_json

log = logging.getLogger(__name__)


def _is_report(path: Path) -> bool:
    """A page this command wrote: the generator tag, or (reports from before the tag) the title."""
    return has_marker(GENERATOR)(path) or has_marker("<title>chestxai report: ", 1024)(path)


def _trained(run: RunDir) -> TrainedRun | None:
    """The run's checkpoint facts (no model is built), or None when it has none (an ensemble)."""
    return TrainedRun.open(run, "cpu", single=True) if run.checkpoint.exists() else None


def ensemble_section(run: RunDir) -> str:
    """Members and weights of an ensemble run (its model is their weighted average)."""
    manifest = read_ensemble(run)
    rows = [(str(m), f"{w:.3f}") for m, w in zip(manifest.members, manifest.weights, strict=True)]
    note = paragraph(
        f"Weighted average of {len(rows)} runs' probabilities; weights fitted on "
        f"{manifest.extra.get('fitted_on', 'val')} (log-loss {manifest.extra.get('val_log_loss', float('nan')):.4f})."
    )
    return note + table(["member run", "weight"], rows)


def _metrics_or_scored(metrics: dict | None) -> str:
    """The metrics table; an external evaluation whose labels differ holds only ``site_shift``."""
    if metrics and "metrics" not in metrics and "scored" in metrics:
        return paragraph(f"Scored: {metrics['scored']} (see Site shift).")
    return sections.metrics_section(metrics)


def build_report(run_dir: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """Write ``RUN/report.html`` (or ``out``) and return its path.

    The target may be a report this command wrote before (recognised by its generator tag);
    any other existing file (a checkpoint, notes) is refused unless ``force``.

    Sections: dataset, configuration, training curves, metrics with CIs, figures and, when the
    run has explanations (``RUN/cams/index.csv``, ``RUN/explain_metrics.json``), a gallery of
    true/false positives/negatives with heatmaps and the localization table, and the trust scorecard
    when ``chestxai scorecard RUN`` wrote ``RUN/scorecard/scorecard.json``. Missing inputs
    become short notes, so a report can be built at any stage.
    """
    run = RunDir(Path(run_dir))
    run.require_dir()
    path = check_overwrite(Path(out) if out is not None else run.report, force, _is_report, "report")
    if not run.checkpoint.exists() and not run.metrics.exists():
        raise FileNotFoundError(
            f"{run.root} has neither checkpoint.pt nor metrics.json: is it a run directory? "
            f"Train with `chestxai train` and evaluate with `chestxai evaluate {run.root}`"
        )
    metrics = read_json(run.metrics) if run.metrics.exists() else None
    trained = _trained(run)
    parts = [
        ("dataset", "Dataset", sections.dataset_section(run, metrics, trained)),
        *([("ensemble", "Ensemble", ensemble_section(run))] if run.is_ensemble else []),
        ("config", "Configuration", sections.config_section(run, trained)),
        ("training", "Training curves", sections.curves_section(run)),
        ("metrics", "Metrics", _metrics_or_scored(metrics)),
        ("figures", "Figures", sections.figures_section(run)),
    ]
    if site_shift.has_site_entries(metrics):
        parts.append(("site-shift", "Site shift", site_shift.site_shift_section(metrics)))
    if subgroups.has_subgroups(metrics):
        parts.append(("subgroups", "Subgroups", subgroups.subgroups_section(metrics)))
    if gallery.has_explanations(run):
        parts.append(("explanations", "Explanations", gallery.gallery_section(run, metrics)))
        parts.append(("localization", "Localization", gallery.localization_section(run)))
    if scorecard.has_scorecard(run):
        parts.append(("scorecard", "Trust scorecard", scorecard.scorecard_section(run)))
    if uncertainty.has_uncertainty(run):
        parts.append(("uncertainty", "Uncertainty", uncertainty.uncertainty_section(run)))
    parts.append(("disclaimer", "Intended use", sections.disclaimer()))
    html_text = page(
        f"chestxai report: {run.root.name}", parts, header=sections.summary_header(run, metrics, trained)
    )
    write_text(path, html_text)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path

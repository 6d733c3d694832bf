"""The sections of a run report, each a function from run-directory contents to HTML.

Every section degrades to a short note when its inputs are missing (a run not yet evaluated, a
cache that has moved), so a report can always be built and says what is absent.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from chestxai.metrics.run_figures import FIGURES
from chestxai.report.html import esc, figure, paragraph, table
from chestxai.rundir import RunDir

if TYPE_CHECKING:
    from chestxai.models.trained_run import TrainedRun

log = logging.getLogger(__name__)

DISCLAIMER = (
    "Research software, not for clinical use. These results describe a model on a research dataset; "
    "they are not validated for diagnosis, screening or any decision about a patient."
)
#: ranking metrics first: they do not depend on the threshold and matter most for comparison
REPORT_ORDER = (
    "roc_auc",
    "average_precision",
    "recall",
    "specificity",
    "precision",
    "f1",
    "accuracy",
    "balanced_accuracy",
)
METRIC_TITLES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced acc.",
    "precision": "precision",
    "recall": "sensitivity",
    "specificity": "specificity",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "average_precision": "AP",
}


def fmt_ci(entry: dict | None, digits: int = 3) -> str:
    """``{"value": v, "ci": [lo, hi]}`` -> ``"0.912 [0.880, 0.940]"`` (``n/a`` when undefined)."""
    if not isinstance(entry, dict) or entry.get("value") is None:
        return "n/a"
    lo, hi = (entry.get("ci") or [None, None])[:2]
    ci = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""
    return f"{entry['value']:.{digits}f}{ci}"


def disclaimer() -> str:
    return f'<p class="warning"><strong>{esc(DISCLAIMER)}</strong></p>'


def summary_header(run: RunDir, metrics: dict | None, trained: TrainedRun | None) -> str:
    items = [f"run <code>{esc(run.root)}</code>"]
    if trained:
        items.append(f"model <strong>{esc(trained.model_name)}</strong>")
    if metrics:
        items.append(f"task {esc(metrics.get('task'))}")
        auc = metrics.get("metrics", {}).get("macro", {}).get("roc_auc")
        items.append(f"{esc(metrics.get('split'))} macro ROC-AUC {esc(fmt_ci(auc))}")
    return disclaimer() + "<p>" + " &middot; ".join(items) + "</p>"


def _run_inputs(run: RunDir, metrics: dict | None, trained: TrainedRun | None):
    """The run's cache and splits, resolved and checked as evaluate and explain do them."""
    from chestxai.models.run_inputs import ModelFacts, resolve_inputs

    if trained:
        return trained.inputs()
    m = metrics or {}  # an ensemble (or a run whose checkpoint is gone): what metrics.json records
    facts = ModelFacts(list(m.get("label_names") or []), m.get("task"), m.get("cache"), str(run.metrics))
    return resolve_inputs(run, facts)


def dataset_section(run: RunDir, metrics: dict | None, trained: TrainedRun | None) -> str:
    path = (metrics or {}).get("cache") or (trained.cache_dir if trained else None)
    if not path:
        return paragraph("The run records no prepared cache (config.data.cache_dir).", "note")
    try:
        inputs = _run_inputs(run, metrics, trained)
    except (FileNotFoundError, ValueError) as exc:
        return paragraph(f"Prepared cache {path} is not available: {exc}", "note")
    cache = inputs.cache
    meta = cache.meta
    rows = [(k, meta[k]) for k in ("source", "root", "size", "task", "n", "key") if k in meta]
    rows.append(("labels", ", ".join(cache.label_names)))
    out = table(["cache", str(cache.path)], rows)
    split = inputs.split_per_row()
    splits = [s for s in ("train", "val", "test") if (split == s).any()] + sorted(
        set(split.unique()) - {"train", "val", "test", ""}
    )
    patients = cache.frame["patient_id"].astype(str)
    out += table(
        ["split", "images", "patients"],
        [(s, int((split == s).sum()), patients[split == s].nunique()) for s in splits],
        "Images and patients per split",
    )
    labels = cache.labels
    body = []
    for c, name in enumerate(cache.label_names):
        cells = [name]
        for s in splits:
            y = labels[(split == s).to_numpy(), c]
            known = ~np.isnan(y)
            cells.append(f"{int((y[known] == 1).sum())} / {int(known.sum())}")
        body.append(cells)
    out += table(["label", *splits], body, "Positives / images with a known label, per split")
    report = cache.report
    if report.get("skipped"):
        out += paragraph(
            f"{len(report['skipped'])} images were skipped at preparation (prepare_report.json).", "note"
        )
    return out


def config_section(run: RunDir, trained: TrainedRun | None) -> str:
    import yaml

    from chestxai.config import ENVIRONMENT_KEY, load_yaml_file

    env = None
    if run.config.exists():
        source = str(run.config)
        try:
            saved = load_yaml_file(run.config)
        except ValueError as exc:  # shown as text: a report is built even from a damaged run
            log.warning("%s", exc)
            saved = None
        if isinstance(saved, dict):
            env = saved.pop(ENVIRONMENT_KEY, None)
            text = yaml.safe_dump(saved, sort_keys=False)
        else:
            text = run.config.read_text(errors="replace")
    elif trained and trained.config:
        text, source = yaml.safe_dump(trained.config, sort_keys=False), "the checkpoint"
    else:
        return paragraph("No config.yaml and no config in the checkpoint.", "note")
    out = paragraph(f"Resolved training configuration (from {source}).")
    out += f"<pre>{esc(text)}</pre>"
    out += environment_table(env)
    if trained:
        model = dict(trained.first.model_kwargs)
        out += table(["model", ""], list(model.items()) + [("preprocess", json.dumps(trained.preprocess))])
    return out


def environment_table(env: dict | None) -> str:
    """The environment config.yaml recorded (chestxai.environment): what the figures came from."""
    if not isinstance(env, dict):
        return paragraph(
            "config.yaml records no environment (trained by an older chestxai): package versions, "
            "device and commit of these figures are unknown.",
            "note",
        )
    env = dict(env)
    packages = env.pop("packages", None) or {}
    git = env.pop("git", None) or {}
    rows = [(k, v) for k, v in env.items()]
    rows += [(name, version) for name, version in packages.items()]
    if git:
        dirty = git.get("dirty")
        state = " (uncommitted changes)" if dirty is True else "" if dirty is False else " (state unknown)"
        rows.append(("git commit", f"{git.get('commit', 'unknown')}{state}"))
    return table(["environment", ""], rows, "The environment these results were computed in")


def curves_section(run: RunDir) -> str:
    from chestxai.metrics.plots import plot_history

    if not run.history.exists():
        return paragraph("No history.csv in the run directory.", "note")
    history = pd.read_csv(run.history)
    path = run.figures / "training_curves.png"
    if not path.exists() or path.stat().st_mtime < run.history.stat().st_mtime:
        plot_history(history, path)
    out = figure(path, FIGURES["training_curves.png"])
    extra = [c for c in ("epoch_time_s", "train_images_per_s") if c in history]
    if extra:
        out += table(
            ["training", "value"],
            [
                *(
                    [("total time (s)", f"{history['epoch_time_s'].sum():.1f}")]
                    if "epoch_time_s" in extra
                    else []
                ),
                *(
                    [("images / s (mean)", f"{history['train_images_per_s'].mean():.1f}")]
                    if "train_images_per_s" in extra
                    else []
                ),
                ("epochs", len(history)),
            ],
        )
    return out


def metrics_section(metrics: dict | None) -> str:
    if not metrics:
        return paragraph("Not evaluated yet: run `chestxai evaluate RUN` and rebuild the report.", "note")
    m = metrics["metrics"]
    boot = metrics.get("bootstrap", {})
    unit = boot.get("unit", "image")
    counted = (
        f"{metrics.get('n_images')} images of {metrics.get('n_patients')} patients"
        if unit == "patient"
        else f"{metrics.get('n_images')} images (no patient ids group them: each image is its own unit)"
    )
    out = paragraph(
        f"Split {metrics.get('split')}: {counted}. "
        f"Brackets: {int(100 * boot.get('level', 0.95))}% {boot.get('method', 'percentile')} bootstrap interval, "
        f"{boot.get('n_boot')} replicates resampling {unit}s (seed {boot.get('seed')})."
    )
    th = metrics.get("thresholds", {})
    values = th.get("values") or {}
    ece = (metrics.get("calibration") or {}).get("ece_per_class") or {}
    header = ["class", "n", "positives", *(METRIC_TITLES[k] for k in REPORT_ORDER)]
    header += ["threshold"] if values else []
    header += ["ECE"] if ece else []
    rows = []
    for name, entry in m["per_class"].items():
        row = [name, entry.get("n"), entry.get("n_pos"), *(fmt_ci(entry.get(k)) for k in REPORT_ORDER)]
        row += [_num(values.get(name))] if values else []
        row += [_num(ece.get(name))] if ece else []
        rows.append(row)
    pad = [""] * (bool(values) + bool(ece))
    for avg in ("macro", "micro", "weighted"):
        rows.append([f"{avg} average", "", "", *(fmt_ci(m[avg].get(k)) for k in REPORT_ORDER), *pad])
    decided = (
        f"thresholds: policy {th.get('policy')}, chosen on {th.get('chosen_on')}"
        if values
        else f"decisions: {th.get('chosen_on', 'argmax')}"
    )
    out += table(header, rows, f"Metrics per class and averaged ({decided})")
    small = (metrics.get("small_n") or {}).get("classes") or {}
    if small:
        listed = ", ".join(f"{k} ({v['n_pos']} positives, {v['n_neg']} negatives)" for k, v in small.items())
        out += paragraph(
            f"Small samples: {listed}. With fewer than {metrics['small_n'].get('min_count')} positives or "
            "negatives a class's bootstrap intervals rest on a handful of cases and are not reliable 95% "
            "intervals; read them as rough.",
            "warning",
        )
    overall = {k: v for k, v in m.get("overall", {}).items() if isinstance(v, dict)}
    if overall:
        out += table(["overall", "value"], [(k.replace("_", " "), fmt_ci(v)) for k, v in overall.items()])
    cal = metrics.get("calibration", {})
    if cal:
        rows = [
            ("ECE (" + str(cal.get("binned", "")) + ")", _num(cal.get("ece"))),
            ("NLL", _num(cal.get("nll"))),
        ]
        after = cal.get("after_temperature")
        if after:
            rows += [
                ("temperature T (fitted on val)", _num(cal.get("temperature"))),
                ("ECE after temperature scaling", _num(after.get("ece"))),
                ("NLL after temperature scaling", _num(after.get("nll"))),
            ]
        out += table(["calibration", "value"], rows)
    return out


def _num(v) -> str:
    return "n/a" if v is None else f"{float(v):.4f}"


def figures_section(run: RunDir) -> str:
    if not run.figures.is_dir():
        return paragraph("No figures: run `chestxai evaluate RUN`.", "note")
    shown = [n for n in FIGURES if n != "training_curves.png" and (run.figures / n).exists()]
    others = sorted(
        p.name for p in run.figures.glob("*.png") if p.name not in FIGURES and not p.name.startswith(".")
    )
    if not shown and not others:
        return paragraph("No figures: run `chestxai evaluate RUN`.", "note")
    items = "".join(
        figure(run.figures / n, FIGURES.get(n, Path(n).stem.replace("_", " "))) for n in shown + others
    )
    return f'<div class="figures">{items}</div>'

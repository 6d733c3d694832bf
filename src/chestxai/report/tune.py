"""``runs/<study>/report.html`` of ``chestxai tune``: a self-contained page built from ``study.json``.

In the order a reader asks: which trial won and what it scores on test (evaluated once, for that
trial only), what pruning saved, every trial (state, value, epochs, time, parameters), how the
search progressed (value per trial with the best so far, per-epoch validation AUC of every trial,
pruned ones marked), which parameters mattered (fANOVA importances, when two trials completed),
and the space and settings that define the study.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from chestxai.atomic import write_text
from chestxai.metrics.plots import DPI, save_figure
from chestxai.report.html import GENERATOR, figure, page, paragraph, table
from chestxai.rundir import StudyDir
from chestxai.rundir.guard import check_overwrite, has_marker
from chestxai.rundir.jsonfile import read_json

COLOURS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728"}


def _f(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if value and abs(value) < 0.01 else f"{value:.{digits}f}"
    return str(value)


def _ci(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "n/a"
    lo, hi = metric.get("ci") or (None, None)
    return f"{metric['value']:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")


def _summary(s: dict, folder: StudyDir) -> str:
    counts = s["counts"]
    shown = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items()))
    parts = [paragraph(f"{sum(counts.values())} trials ({shown}) of a target of {s['trials_target']}, "
                       f"maximising validation ROC-AUC; storage {s['storage']}.")]  # fmt: skip
    best = s.get("best")
    if best is None:
        parts.append(paragraph("No trial has completed yet.", "warning"))
        return "".join(parts)
    params = ", ".join(f"{k}={_f(v)}" for k, v in best["params"].items())
    parts.append(paragraph(f"Best trial {best['number']} ({best['run_dir']}): val AUC {_f(best['value'])} "
                           f"after {best['epochs_run']} epochs, with {params}."))  # fmt: skip
    test = best.get("test")
    if test:
        parts.append(paragraph(
            f"Test (evaluated once, for the best trial only; thresholds by {test['threshold_policy']} on val): "
            f"ROC-AUC {_ci(test['roc_auc'])}, accuracy {_ci(test.get('accuracy'))} on {test['n_images']} images "
            f"({test['metrics']})."
        ))  # fmt: skip
    else:
        parts.append(paragraph("Test not evaluated yet: the study is not complete (or a trial still runs).",
                               "note"))  # fmt: skip
    if len(s.get("test_evaluated", [])) > 1:
        parts.append(
            paragraph(
                f"Test was evaluated for trials {s['test_evaluated']}: the best trial changed after the study was "
                "continued. Only the current best trial's test figures belong to this study's result.",
                "warning",
            )
        )
    pr = s["pruning"]
    if pr["pruned_trials"]:
        parts.append(paragraph(
            f"Pruning stopped {pr['pruned_trials']} trials early: {pr['epochs_run']} of {pr['epochs_planned']} "
            f"planned epochs were trained, an estimated {pr['estimated_time_saved_s'] / 60:.1f} min saved "
            f"({pr['estimated_fraction_saved']:.0%} of the time all trials would have taken; "
            f"{pr['time_s'] / 60:.1f} min spent)."
        ))  # fmt: skip
    parts.append(
        paragraph(f"Train the best recipe again: chestxai train --config {folder.best_config}", "note")
    )
    return "".join(parts)


def _trials(s: dict) -> str:
    keys = list(s["space"])
    header = ["trial", "state", "val AUC", "epochs", "seconds", *keys, "run dir", "note"]
    rows = []
    for t in s["trials"]:
        note = t.get("error") or ""
        if t.get("retry_of") is not None:
            note = f"retry of trial {t['retry_of']}" + (f"; {note}" if note else "")
        rows.append([t["number"], t["state"], _f(t["value"]), f"{t['epochs_run']}/{t['epochs_planned']}",
                     _f(t["duration_s"], 1) if t["duration_s"] is not None else "", *[_f(t["params"].get(k))
                     for k in keys], t["run_dir"] or "", note])  # fmt: skip
    note = paragraph(
        "Value: the validation AUC of the trial's selected checkpoint (its best epoch); for a pruned trial the "
        "value at the epoch it stopped. A failed trial whose process died is re-run as a new trial with the "
        "same parameters.",
        "note",
    )
    return table(header, rows) + note


def _axes(width: float = 6.4, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.55 / height, top=1 - 0.35 / height)
    return fig, fig.add_subplot()


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _history_figure(s: dict, out: Path) -> Path:
    fig, ax = _axes()
    for state in ("COMPLETE", "PRUNED"):
        pts = [
            (t["number"], t["value"]) for t in s["trials"] if t["state"] == state and t["value"] is not None
        ]
        if pts:
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=22, color=COLOURS[state], marker="o" if state == "COMPLETE" else "x",
                       label=state.lower())  # fmt: skip
    best, xs, ys = -math.inf, [], []
    for t in sorted(s["trials"], key=lambda t: t["number"]):
        if t["state"] == "COMPLETE" and t["value"] is not None:
            best = max(best, t["value"])
            xs.append(t["number"])
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="k", lw=1, label="best so far")
    ax.set_xlabel("trial")
    _integer_x(ax)
    ax.set_ylabel("val ROC-AUC")
    ax.set_title("Optimisation history", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, out)


def _intermediate_figure(s: dict, out: Path) -> Path:
    fig, ax = _axes()
    for t in s["trials"]:
        steps = sorted((int(k), v) for k, v in t["intermediate"].items() if v is not None)
        if steps:
            ax.plot([x for x, _ in steps], [y for _, y in steps], color=COLOURS.get(t["state"], "#999"), lw=1, alpha=0.8,
                    ls="--" if t["state"] == "PRUNED" else "-", marker=".")  # fmt: skip
    ax.set_xlabel("epoch")
    _integer_x(ax)
    ax.set_ylabel("val ROC-AUC")
    ax.set_title("Per-epoch validation AUC (dashed: pruned)", fontsize=10)
    return save_figure(fig, out)


def _importance_figure(values: dict[str, float], out: Path) -> Path:
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig, ax = _axes(height=1.2 + 0.4 * len(items))
    fig.subplots_adjust(left=0.3)
    ax.barh([k for k, _ in items], [v for _, v in items], color="#1f77b4")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_title("Parameter importances", fontsize=10)
    return save_figure(fig, out)


def _progress(s: dict, folder: StudyDir) -> str:
    folder.figures.mkdir(parents=True, exist_ok=True)
    if not any(t["value"] is not None for t in s["trials"]):
        return paragraph("No trial has reported a value yet.", "note")
    return (
        '<div class="figures">'
        + figure(_history_figure(s, folder.history_figure), "Value per trial and the best so far")
        + figure(
            _intermediate_figure(s, folder.intermediate_figure), "Per-epoch validation AUC of every trial"
        )
        + "</div>"
    )


def _importances(s: dict, folder: StudyDir) -> str:
    imp = s["importances"]
    if not imp.get("values"):
        return paragraph(f"Parameter importances not shown: {imp['note']}.", "note")
    folder.figures.mkdir(parents=True, exist_ok=True)
    rows = [[k, f"{v:.3f}"] for k, v in imp["values"].items()]
    return table(["parameter", "importance"], rows) + figure(
        _importance_figure(imp["values"], folder.importance_figure), imp["note"]
    )


def _settings(s: dict) -> str:
    space = [[k, json.dumps(v)] for k, v in s["space"].items()]
    rows = [["recipe", s.get("recipe")], ["--set", " ".join(s.get("overrides") or []) or "-"],
            ["space file", s.get("space_file")], ["sampler", json.dumps(s["sampler"])],
            ["pruner", json.dumps(s["pruner"])], ["storage", s["storage"]]]  # fmt: skip
    return table(["searched key", "range"], space) + table(["setting", "value"], rows)


def build_tune_report(study_dir: str | Path, force: bool = False) -> Path:
    """Write ``report.html`` (and its figures) from ``study.json``; replaces only a report chestxai wrote."""
    folder = StudyDir(Path(study_dir))
    if not folder.summary.is_file():
        raise FileNotFoundError(
            f"{folder.summary} not found; run `chestxai tune ... --run-dir {study_dir}` first"
        )
    s = read_json(folder.summary)
    check_overwrite(folder.report, force, has_marker(GENERATOR), "report")
    sections = [
        ("summary", "Summary", _summary(s, folder)),
        ("trials", "Trials", _trials(s)),
        ("history", "Optimisation history", _progress(s, folder)),
        ("importances", "Parameter importances", _importances(s, folder)),
        ("settings", "Search space and settings", _settings(s)),
    ]
    header = paragraph(
        "Hyper-parameter search (Optuna), selected on validation only. Research software, not for clinical use.",
        "note",
    )
    write_text(folder.report, page(f"chestxai study {s['name']}", sections, header))
    return folder.report

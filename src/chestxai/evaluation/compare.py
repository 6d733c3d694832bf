"""``compare``: several evaluated runs side by side, with a significance test against the first.

Runs must have been evaluated on the *same* test images (checked by image id and targets):
otherwise differences mix model and data and no paired test is valid. Reads only the run
directories: the split's metrics and predictions, ``history.csv`` and the checkpoint (for the
parameter count). An ensemble run counts its members' parameters and training time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.atomic import write_text
from chestxai.evaluation.significance import paired_bootstrap_auc, per_class_delong
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble
from chestxai.rundir.guard import check_overwrite
from chestxai.rundir.jsonfile import as_float, read_json
from chestxai.rundir.predictions import Predictions, read_predictions
from chestxai.rundir.tables import read_history

log = logging.getLogger(__name__)

#: macro-averaged metrics shown per run, in table order
SUMMARY_METRICS = (
    "roc_auc",
    "average_precision",
    "f1",
    "recall",
    "specificity",
    "accuracy",
    "balanced_accuracy",
)


@dataclass
class Comparison:
    summary: pd.DataFrame  # one row per run
    per_class: pd.DataFrame  # one row per (run, class): AUC with CI and DeLong p vs the first run
    paths: list[Path] = field(default_factory=list)  # files written


def _members(run: RunDir) -> list[RunDir]:
    return [RunDir(m) for m in read_ensemble(run).members] if run.is_ensemble else [run]


def _model_info(run: RunDir) -> tuple[str, int | None]:
    """Model name and parameter count (an ensemble: its members' names and summed parameters)."""
    from chestxai.models.checkpoint import load_model  # torch: only when comparing

    names, total = [], 0
    for member in _members(run):
        model, ckpt = load_model(member.require_checkpoint())
        names.append(str(ckpt.get("model", {}).get("name", "?")))
        total += int(sum(p.numel() for p in model.parameters()))
    return (names[0] if not run.is_ensemble else "ensemble(" + "+".join(names) + ")"), total


def _timing(run: RunDir) -> tuple[float, float]:
    """Training seconds (summed over an ensemble's members) and mean training images/s."""
    totals, speeds = [], []
    for member in _members(run):
        h = read_history(member)
        if h is None:
            return float("nan"), float("nan")
        totals.append(float(h["epoch_time_s"].sum()) if "epoch_time_s" in h else float("nan"))
        speeds.append(float(h["train_images_per_s"].mean()) if "train_images_per_s" in h else float("nan"))
    return float(np.sum(totals)), float(np.mean(speeds))


def _load(run: RunDir, split: str) -> tuple[dict, Predictions]:
    metrics_path, preds_path = run.metrics_for(split), run.predictions_for(split)
    if not metrics_path.exists() or not preds_path.exists():
        flag = "" if split == "test" else f" --split {split}"
        raise FileNotFoundError(
            f"{run.root} has no {metrics_path.name}/{preds_path.name}; run `chestxai evaluate {run.root}{flag}` first"
        )
    metrics = read_json(metrics_path)
    if metrics.get("split") != split:
        raise ValueError(
            f"{metrics_path} was evaluated on {metrics.get('split')!r}, not {split!r}; "
            f"run `chestxai evaluate {run.root} --split {split}`"
        )
    preds = read_predictions(preds_path).select(split)
    return metrics, preds


def _align(first: Predictions, other: Predictions, names: tuple[str, str]) -> Predictions:
    """``other`` reordered to ``first``'s image order; an error if the image sets or targets differ."""
    a, b = first.frame["image_id"].to_numpy(str), other.frame["image_id"].to_numpy(str)
    if set(a) != set(b) or len(a) != len(b):
        only_a, only_b = len(set(a) - set(b)), len(set(b) - set(a))
        raise ValueError(
            f"runs {names[0]} and {names[1]} were not evaluated on the same test images "
            f"({only_a} only in the first, {only_b} only in the second, {len(a)} vs {len(b)} rows); "
            f"evaluate both on the same cache and split (`chestxai evaluate RUN --data CACHE`)"
        )
    if first.label_names != other.label_names:
        raise ValueError(
            f"runs {names[0]} and {names[1]} predict different labels: {first.label_names} vs {other.label_names}"
        )
    pos = pd.Series(np.arange(len(b)), index=b)[a].to_numpy()
    aligned = Predictions(
        other.frame.iloc[pos].reset_index(drop=True), other.probs[pos], other.targets[pos], other.label_names
    )
    if not np.array_equal(np.isnan(aligned.targets), np.isnan(first.targets)) or not np.allclose(
        np.nan_to_num(aligned.targets), np.nan_to_num(first.targets)
    ):
        raise ValueError(f"runs {names[0]} and {names[1]} have the same test images but different targets")
    return aligned


def _fmt(v: dict | None) -> str:
    if not v or v.get("value") is None:
        return "n/a"
    lo, hi = v.get("ci") or (None, None)
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{v['value']:.3f}{ci}"


def _p_text(row: dict) -> str:
    boot = f"bootstrap (macro AUC) {row['p_bootstrap_macro_auc']:.3g}"
    return f"DeLong {row['p_delong']:.3g}; {boot}" if np.isfinite(row["p_delong"]) else boot


def _metric(metrics: dict, key: str) -> dict | None:
    m = metrics["metrics"]
    if key in ("accuracy", "balanced_accuracy") and key in m.get("overall", {}):
        return m["overall"][key]
    return m["macro"].get(key)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(row) + " |" for row in cells.to_numpy()]
    return "\n".join([head, rule, *body]) + "\n"


def compare_runs(
    run_dirs: list[str | Path],
    split: str = "test",
    out: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    force: bool = False,
) -> Comparison:
    """Compare evaluated runs; with ``out`` (a path prefix) write ``<out>.md``, ``<out>.csv`` and
    ``<out>_per_class.csv`` (existing files are refused unless ``force``).

    Significance against the first run: DeLong per class (``p_delong`` in the summary for a
    single-output model, per class otherwise) and a paired, patient-clustered bootstrap of the
    macro ROC-AUC difference (``p_bootstrap_macro_auc``).
    """
    if len(run_dirs) < 1:
        raise ValueError("give at least one run directory")
    runs = [RunDir(Path(r)) for r in run_dirs]
    if out is not None:
        for path in output_paths(Path(out)):
            check_overwrite(path, force, what="comparison")
    loaded = [_load(r, split) for r in runs]
    first_metrics, first = loaded[0]
    task = first_metrics["task"]
    names = first.label_names
    rows, class_rows, md_rows = [], [], []
    for i, (run, (metrics, preds)) in enumerate(zip(runs, loaded, strict=True)):
        label = run.root.name
        aligned = preds if i == 0 else _align(first, preds, (runs[0].root.name, label))
        model_name, n_params = _model_info(run)
        train_s, speed = _timing(run)
        row = {
            "run": label,
            "model": model_name,
            "params": n_params,
            "train_time_s": train_s,
            "images_per_s": speed,
        }
        row["n_images"] = len(aligned.frame)
        md = dict(row)
        for key in SUMMARY_METRICS:
            v = _metric(metrics, key)
            if v is None:
                continue
            row[key] = as_float(v.get("value"))
            lo, hi = v.get("ci") or (None, None)
            row[f"{key}_ci_low"], row[f"{key}_ci_high"] = as_float(lo), as_float(hi)
            md[key] = _fmt(v)
        delong = per_class_delong(first.targets, first.probs, aligned.probs, task, names) if i else {}
        if i:
            pb = paired_bootstrap_auc(
                first.targets,
                aligned.probs,
                first.probs,
                task,
                first.frame["patient_id"].to_numpy(),
                n_boot,
                seed,
            )
            row["delta_macro_auc"] = pb.diff
            row["p_bootstrap_macro_auc"] = pb.p_value
            single = delong.get(names[0]) if len(names) == 1 else None
            row["p_delong"] = single.p_value if single is not None else np.nan
        md["p (vs first)"] = _p_text(row) if i else "-"
        for name in names:
            v = metrics["metrics"]["per_class"][name]["roc_auc"]
            lo, hi = v.get("ci") or (None, None)
            d = delong.get(name)
            class_rows.append(
                {
                    "run": label,
                    "label": name,
                    "roc_auc": as_float(v.get("value")),
                    "ci_low": as_float(lo),
                    "ci_high": as_float(hi),
                    "p_delong_vs_first": (d.p_value if d is not None else np.nan) if i else np.nan,
                }
            )
        rows.append(row)
        md_rows.append(md)
    comparison = Comparison(pd.DataFrame(rows), pd.DataFrame(class_rows))
    if out is not None:
        comparison.paths = _write(comparison, pd.DataFrame(md_rows), Path(out), split)
    return comparison


def output_paths(out: Path) -> list[Path]:
    """``<out>.md``, ``<out>.csv``, ``<out>_per_class.csv``."""
    return [Path(f"{out}.md"), Path(f"{out}.csv"), Path(f"{out}_per_class.csv")]


def _write(comparison: Comparison, md: pd.DataFrame, out: Path, split: str) -> list[Path]:
    md_path, csv, per_class = output_paths(out)
    write_text(csv, comparison.summary.to_csv(index=False))
    write_text(per_class, comparison.per_class.to_csv(index=False))
    pc = comparison.per_class.copy()
    pc["roc_auc"] = [
        f"{r.roc_auc:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.roc_auc) else "n/a"
        for r in pc.itertuples()
    ]
    pc["p_delong_vs_first"] = [f"{p:.3g}" if np.isfinite(p) else "" for p in pc["p_delong_vs_first"]]
    pc = pc.drop(columns=["ci_low", "ci_high"])
    text = (
        f"# Run comparison ({split} split)\n\n"
        "Macro averages with 95% bootstrap intervals; p-values test the ROC-AUC difference to the first run "
        "on the same images (DeLong per class; paired patient-level bootstrap for the macro AUC).\n\n"
        + markdown_table(md)
        + "\n## ROC-AUC per class\n\n"
        + markdown_table(pc)
    )
    write_text(md_path, text)
    log.info("wrote %s, %s, %s", md_path, csv, per_class)
    return [md_path, csv, per_class]

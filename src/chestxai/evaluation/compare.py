"""``compare``: several evaluated runs side by side, with a significance test against the first
and what each run cost.

Runs must have been evaluated on the *same* test images (checked by image id and targets):
otherwise differences mix model and data and no paired test is valid. Reads the run
directories (the split's metrics and predictions, ``history.csv``, the checkpoint) and, for the
inference speed, measures each model on this machine once and caches it in ``RUN/cost.json``
(:mod:`chestxai.evaluation.cost`). With ``out`` it writes the tables and the comparison figures
(:mod:`chestxai.metrics.compare_plots`); the HTML report is :mod:`chestxai.report.compare`.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from chestxai.atomic import staging_dir, write_text
from chestxai.crashpoints import crash_point
from chestxai.devices import pick_device
from chestxai.evaluation.cost import SpeedSettings, cost_row
from chestxai.metrics.classification import SUMMARY_METRICS
from chestxai.metrics.compare_plots import BAR_METRICS, RunCurves, figure_paths, write_compare_figures
from chestxai.metrics.markdown import markdown_table
from chestxai.metrics.significance import format_p, holm_adjust, paired_bootstrap_auc, per_class_delong
from chestxai.metrics.task_rules import uses_thresholds
from chestxai.rundir import RunDir
from chestxai.rundir.guard import check_overwrite, has_marker
from chestxai.rundir.jsonfile import as_float, read_json
from chestxai.rundir.predictions import Predictions, read_predictions

log = logging.getLogger(__name__)

#: macro-averaged metrics shown per run, in table order
MULTIPLICITY_NOTE = (
    "Per-class p-values are one test per class: with several classes some raw p < 0.05 are expected by "
    "chance. p_delong_holm_vs_first is Holm-adjusted over the classes of each run against the first "
    "(family-wise error); read significance from it, the raw p beside it for each test alone."
)


@dataclass
class RunResult:
    """One compared run: its label, metrics.json and predictions in the reference run's image order."""

    name: str
    run: RunDir
    metrics: dict
    predictions: Predictions


@dataclass
class Comparison:
    summary: pd.DataFrame  # one row per run: metrics, cost columns, p-values
    per_class: pd.DataFrame  # one row per (run, class): AUC with CI and DeLong p vs the first run
    paths: list[Path] = field(default_factory=list)  # files written
    split: str = "test"
    task: str = ""
    label_names: list[str] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)  # figure key -> PNG (compare_plots.FIGURES)
    out: Path | None = None  # the output path prefix
    report: Path | None = None  # OUT.html once chestxai.report.compare wrote it

    def curves(self) -> list[RunCurves]:
        """What the figures need from each run."""
        out = []
        for r in self.runs:
            th = (r.metrics.get("thresholds") or {}).get("values") if uses_thresholds(self.task) else None
            bars = {k: _metric(r.metrics, k) for k in BAR_METRICS}
            p = r.predictions
            out.append(RunCurves(r.name, p.probs, p.targets, th, bars))
        return out


def run_labels(runs: list[RunDir]) -> list[str]:
    """Each run's folder name; where two share one (``a/run``, ``b/run``), ``parent/name``."""
    names = [r.root.name for r in runs]
    return [
        f"{r.root.parent.name}/{r.root.name}" if names.count(r.root.name) > 1 else r.root.name for r in runs
    ]


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
    boot = f"bootstrap (macro AUC) {format_p(row['p_bootstrap_macro_auc'])}"
    return f"DeLong {format_p(row['p_delong'])}; {boot}" if np.isfinite(row["p_delong"]) else boot


def _metric(metrics: dict, key: str) -> dict | None:
    m = metrics["metrics"]
    if key in ("accuracy", "balanced_accuracy") and key in m.get("overall", {}):
        return m["overall"][key]
    return m["macro"].get(key)


def compare_runs(
    run_dirs: list[str | Path],
    split: str = "test",
    out: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    force: bool = False,
    *,
    speed: bool = True,
    remeasure: bool = False,
    device: str = "auto",
    threads: int = 0,
    speed_settings: SpeedSettings | None = None,
    progress: bool = False,
) -> Comparison:
    """Compare evaluated runs; with ``out`` (a path prefix) write ``<out>.md``, ``<out>.csv``,
    ``<out>_per_class.csv`` and the figures ``<out>_<key>.png`` (existing files, and an existing
    ``<out>.html`` the report would replace, are refused unless ``force``).

    Significance against the first run: DeLong per class (``p_delong`` in the summary for a
    single-output model, per class otherwise) and a paired, patient-clustered bootstrap of the
    macro ROC-AUC difference (``p_bootstrap_macro_auc``). Cost columns
    (:data:`chestxai.evaluation.cost.COST_COLUMNS`): ``speed=False`` leaves the inference ones
    empty with the reason; ``remeasure`` ignores speeds cached in ``RUN/cost.json``; ``device``
    and ``threads`` say where they are measured.
    """
    if len(run_dirs) < 1:
        raise ValueError("give at least one run directory")
    runs = [RunDir(Path(r)) for r in run_dirs]
    if speed:
        device = str(pick_device(device))  # a CUDA device that is not here: an error before any work
    if out is not None:
        ours = _previous_comparison(Path(out))
        for path in output_paths(Path(out)):
            if path.is_file() and not (force or ours):
                raise FileExistsError(
                    f"{path} exists and is not part of a finished comparison (no {out}.md written by "
                    f"`chestxai compare`); choose another --out or pass --force to replace it"
                )
            check_overwrite(path, force, lambda _p: ours, what="comparison")
    loaded = [_load(r, split) for r in runs]
    first_metrics, first = loaded[0]
    task = first_metrics["task"]
    names = first.label_names
    labels = run_labels(runs)
    rows, class_rows, md_rows, results = [], [], [], []
    steps = tqdm(list(zip(runs, loaded, labels, strict=True)), desc="compare", disable=not progress)
    for i, (run, (metrics, preds), label) in enumerate(steps):
        aligned = preds if i == 0 else _align(first, preds, (labels[0], label))
        results.append(RunResult(label, run, metrics, aligned))
        model_name, cost = cost_row(run, speed, device, threads, remeasure, speed_settings)
        row = {"run": label, "model": model_name, **cost, "n_images": len(aligned.frame)}
        md = {"run": label, "model": model_name, "n_images": row["n_images"]}
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
        raw = [(d.p_value if d is not None else np.nan) if i else np.nan for d in map(delong.get, names)]
        holm = holm_adjust(raw)  # the family: this run's per-class tests against the first
        for name, p_raw, p_holm in zip(names, raw, holm, strict=True):
            v = metrics["metrics"]["per_class"][name]["roc_auc"]
            lo, hi = v.get("ci") or (None, None)
            class_rows.append(
                {
                    "run": label,
                    "label": name,
                    "roc_auc": as_float(v.get("value")),
                    "ci_low": as_float(lo),
                    "ci_high": as_float(hi),
                    "p_delong_vs_first": p_raw,
                    "p_delong_holm_vs_first": p_holm,
                }
            )
        rows.append(row)
        md_rows.append(md)
    comparison = Comparison(
        pd.DataFrame(rows),
        pd.DataFrame(class_rows),
        split=split,
        task=task,
        label_names=list(names),
        runs=results,
    )
    if out is not None:
        comparison.out = Path(out)
        comparison.figures, comparison.paths = _write_outputs(comparison, pd.DataFrame(md_rows), Path(out))
    return comparison


#: how ``<out>.md`` starts: renamed into place last, it marks the set of files as this command's
MD_HEADING = "# Run comparison"


def _previous_comparison(out: Path) -> bool:
    """Whether ``<out>.*`` is a finished comparison (its ``<out>.md`` is ours): a re-run replaces it."""
    return has_marker(MD_HEADING, 64)(Path(f"{out}.md"))


def _write_outputs(comparison: Comparison, md: pd.DataFrame, out: Path) -> tuple[dict[str, Path], list[Path]]:
    """Tables and figures written in a staging folder beside ``out``, then renamed into place with
    ``<out>.md`` last: a killed comparison leaves only the staging folder (cleared by the next
    run), never some ``<out>.*`` files that would block a re-run."""
    tmp = staging_dir(out)
    try:
        staged = tmp / out.name
        figures = write_compare_figures(staged, comparison.curves(), comparison.task, comparison.label_names)
        comparison.figures = figures  # the Markdown links them by name (the same once renamed)
        tables = _write(comparison, md, staged, comparison.split)
        crash_point("compare:staged")
        final = {p: out.parent / p.name for p in [*figures.values(), *tables]}
        for p in [*figures.values(), *tables[1:], tables[0]]:  # <out>.md last
            os.replace(p, final[p])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s", ", ".join(str(final[p]) for p in tables))
    return {k: final[p] for k, p in figures.items()}, [final[p] for p in tables] + [
        final[p] for p in figures.values()
    ]


def output_paths(out: Path) -> list[Path]:
    """Every file a comparison with prefix ``out`` writes: ``<out>.md``, ``<out>.csv``,
    ``<out>_per_class.csv``, the figures ``<out>_<key>.png`` and the report ``<out>.html``."""
    return [
        Path(f"{out}.md"),
        Path(f"{out}.csv"),
        Path(f"{out}_per_class.csv"),
        *figure_paths(out).values(),
        html_path(out),
    ]


def html_path(out: str | Path) -> Path:
    """``<out>.html``: the comparison report (:mod:`chestxai.report.compare` writes it)."""
    return Path(f"{out}.html")


def _num(v, digits: int = 1) -> str:
    return "" if v is None or not np.isfinite(v) else f"{v:,.{digits}f}"


def cost_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The cost columns of the summary as display text (units in the column names' doc)."""
    rows = []
    for r in summary.to_dict("records"):
        peak = _num(r["peak_memory_mb"])
        rows.append(
            {
                "run": r["run"],
                "params": f"{int(r['params']):,}",
                "checkpoint_mb": _num(r["checkpoint_mb"], 2),
                "train_time_s": _num(r["train_time_s"]),
                "train_images_per_s": _num(r["train_images_per_s"]),
                "peak_memory_mb": f"{peak} ({r['peak_memory_of']})" if peak else r["peak_memory_of"],
                "infer_images_per_s_b1": _num(r["infer_images_per_s_b1"]),
                "infer_latency_ms_b1": _num(r["infer_latency_ms_b1"], 2),
                "infer_images_per_s_b32": _num(r["infer_images_per_s_b32"]),
                "infer_latency_ms_b32": _num(r["infer_latency_ms_b32"], 2),
            }
        )
    return pd.DataFrame(rows)


#: what the cost columns mean (Markdown and HTML say it under the table)
COST_NOTE = (
    "params: every parameter (an ensemble: summed over members); checkpoint_mb: checkpoint.pt in MiB "
    "(ensemble: sum); train_time_s: sum of epoch_time_s in history.csv, on the training machine "
    "(ensemble: sum); train_images_per_s: mean over epochs (ensemble: 1 / sum of members' 1 / images/s); "
    "peak_memory_mb: max over epochs in MiB, GPU allocator peak on a GPU, else the CPU process's peak "
    "RSS (ensemble: the largest member); infer_*: images/s and median latency per call of the run's "
    "predict path (preprocessing + model + probabilities; an ensemble runs all members) on random "
    "images at the run's input size, at batch 1 and 32, measured on the machine named below."
)


def speed_lines(summary: pd.DataFrame) -> list[str]:
    """One line per machine/note the inference columns come from."""
    out = []
    for r in summary.to_dict("records"):
        where = f" on {r['speed_machine']}" if r["speed_machine"] else ""
        out.append(f"{r['run']}: {r['speed_note']}{where}")
    return out


def _write(comparison: Comparison, md: pd.DataFrame, out: Path, split: str) -> list[Path]:
    md_path, csv, per_class = output_paths(out)[:3]
    write_text(csv, comparison.summary.to_csv(index=False))
    write_text(per_class, comparison.per_class.to_csv(index=False))
    pc = comparison.per_class.copy()
    pc["roc_auc"] = [
        f"{r.roc_auc:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.roc_auc) else "n/a"
        for r in pc.itertuples()
    ]
    for col in ("p_delong_vs_first", "p_delong_holm_vs_first"):
        pc[col] = [format_p(p) if np.isfinite(p) else "" for p in pc[col]]
    pc = pc.drop(columns=["ci_low", "ci_high"])
    figures = "".join(f"![{key}]({path.name})\n" for key, path in comparison.figures.items())
    text = (
        f"{MD_HEADING} ({split} split)\n\n"
        "Macro averages with 95% bootstrap intervals; p-values test the ROC-AUC difference to the first run "
        "on the same images (DeLong per class; paired patient-level bootstrap for the macro AUC).\n\n"
        + markdown_table(md)
        + "\n## Cost\n\n"
        + markdown_table(cost_table(comparison.summary))
        + "\n"
        + COST_NOTE
        + "\n\n"
        + "".join(f"- {line}\n" for line in speed_lines(comparison.summary))
        + "\n## ROC-AUC per class\n\n"
        + markdown_table(pc)
        + f"\n{MULTIPLICITY_NOTE}\n"
        + (f"\n## Figures\n\n{figures}" if figures else "")
    )
    write_text(md_path, text)
    return [md_path, csv, per_class]

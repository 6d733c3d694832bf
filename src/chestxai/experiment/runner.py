"""Run an experiment file: train and evaluate a list of recipes, then compare them in one report.

The seeds' comparisons (VGG vs ResNets, CNN vs multi-task vs ViT vs ensemble) are a handful of
runs that differ in a key or two, scored on the same test images. An experiment file names them
(:mod:`chestxai.experiment.spec`); :func:`run_experiment` runs each in turn - train (or continue
an interrupted training), evaluate on test, or build an ensemble from earlier runs - and writes
one comparison over every run that finished. A run that fails is listed and the others go on: one
diverging model should not cost the night's other results. ``experiment.json`` records each run's
state and settings, so a resumed experiment skips what finished and refuses runs whose settings
changed (their numbers would describe another recipe). ``chestxai experiment`` is the thin CLI.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chestxai.recipes import RECIPES, shipped_or_path
from chestxai.rundir import ExperimentDir

log = logging.getLogger(__name__)

#: shipped experiment files (package data: configs/experiments/*.yaml)
EXPERIMENTS = RECIPES / "experiments"


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what): continue a used folder, write into a foreign one, device, bars."""

    resume: bool = False
    force: bool = False
    device: str | None = None  # None = each recipe's train.device
    progress: bool = True


def experiment_path(text: str) -> Path:
    """A file path, or the stem of a shipped experiment file."""
    return shipped_or_path(text, EXPERIMENTS, "experiment file", "")


# ---- state: what each run came to ---------------------------------------------------------------
def read_state(layout: ExperimentDir) -> dict[str, Any]:
    from chestxai.rundir.jsonfile import read_json

    return read_json(layout.state) if layout.state.exists() else {}


def finished(path: Path) -> bool:
    """A run (or ensemble) is finished once it has been scored on test."""
    from chestxai.rundir import RunDir

    return RunDir(path).metrics_for("test").exists()


def run_status(spec, layout: ExperimentDir, state: dict[str, Any]) -> str:
    """``new``, ``finished``, ``interrupted`` (files, not scored yet) or ``changed`` (other settings)."""
    folder = layout.run(spec.name)
    recorded = (state.get("runs") or {}).get(spec.name)
    if not folder.exists() or not any(p.name != ".lock" for p in folder.iterdir()):
        return "new"
    if recorded is not None and recorded.get("fingerprint") != spec.fingerprint():
        return "changed"
    if recorded is None and not spec.is_ensemble and not _same_config(folder, spec):
        return "changed"  # not recorded yet (killed during the run) or not ours: its config.yaml says
    return "finished" if finished(folder) else "interrupted"


def _same_config(folder: Path, spec) -> bool:
    """Whether the run's saved config.yaml (if any) is the config ``spec`` would train."""
    from chestxai.config import ENVIRONMENT_KEY
    from chestxai.devices import parse_amp
    from chestxai.rundir import RunDir
    from chestxai.train.data_setup import cache_row_size
    from chestxai.yamlsafe import load_yaml_file

    saved_path = RunDir(folder).config
    if not saved_path.exists():
        return True
    saved = load_yaml_file(saved_path) or {}
    want = spec.fingerprint()["config"]
    # training records an existing data.cache_dir's own row size as data.size (record_cache)
    if (rows := cache_row_size(want.get("data", {}).get("cache_dir", ""))) is not None:
        want["data"]["size"] = rows
    for config in (saved, want):
        config.pop(ENVIRONMENT_KEY, None)
        config.pop("run_dir", None)
        config.get("train", {}).pop("device", None)
        config.get("data", {}).pop("cache_dir", None)  # filled in by training
        config.get("train", {}).pop("precision", None)  # filled in by training, for its device
        config.pop("track", None)  # whether MLflow also logs it does not change the run
        train = config.get("train", {})
        if "amp" in train:  # runs saved before amp was auto/on/off hold true/false
            train["amp"] = parse_amp(train["amp"])
    return saved == want


def check_folder(layout: ExperimentDir, name: str, state: dict, options: RunOptions) -> None:
    """A plain run needs a new or empty folder; --resume one of this experiment's; --force anything."""
    root = layout.root
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"--out {root} is a file; give a folder")
    used = root.is_dir() and any(p.name != ".lock" for p in root.iterdir())
    if not used or options.force:
        return
    if not options.resume:
        raise FileExistsError(
            f"{root} is not empty; pass --resume to continue the experiment there (finished runs are skipped), "
            f"--force to write into it anyway, or choose another --out"
        )
    if state.get("name") not in (None, name):
        raise FileExistsError(
            f"{root} holds experiment {state.get('name')!r}, not {name!r}; choose another --out or pass --force"
        )


# ---- one run ------------------------------------------------------------------------------------
def _train_and_evaluate(spec, options: RunOptions, evaluate: dict) -> dict[str, float]:
    from chestxai.evaluation.evaluate import evaluate_run
    from chestxai.train.loop import train

    progress = options.progress
    started = time.perf_counter()
    run_dir = train(spec.config, resume=True, progress=progress)  # resume: continue, or start afresh
    trained = time.perf_counter()
    evaluate_run(
        run_dir,
        split="test",
        threshold_policy=evaluate.get("threshold_policy", "youden"),
        n_boot=evaluate.get("n_boot", 1000),
        device=options.device or "auto",
        progress=progress,
    )
    return {"train_s": trained - started, "evaluate_s": time.perf_counter() - trained}


def _ensemble(spec, layout: ExperimentDir, evaluate: dict) -> dict[str, float]:
    from chestxai.evaluation.ensemble_runs import ensemble_runs

    started = time.perf_counter()
    out = layout.run(spec.name)
    ensemble_runs(
        [layout.run(m) for m in spec.members],
        out,
        split="test",
        threshold_policy=evaluate.get("threshold_policy", "youden"),
        n_boot=evaluate.get("n_boot", 1000),
        force=out.exists(),  # our own unfinished ensemble folder (it is inside the experiment folder)
    )
    return {"evaluate_s": time.perf_counter() - started}


def execute(spec, layout, status: str, results: dict, options: RunOptions, evaluate: dict) -> dict[str, Any]:
    """Run one entry; never raises for the run's own failure (the error is returned in the entry)."""
    entry: dict[str, Any] = {"fingerprint": spec.fingerprint(), "overrides": spec.overrides}
    if status == "finished":
        return {**entry, **(results.get(spec.name) or {}), "status": "finished earlier"}
    failed = [m for m in spec.members if results.get(m, {}).get("status") not in ("done", "finished earlier")]
    if failed:
        return {**entry, "status": "skipped", "error": f"member runs did not finish: {', '.join(failed)}"}
    what = f"ensemble of {', '.join(spec.members)}" if spec.is_ensemble else _recipe_name(spec.recipe)
    print(f"== {spec.name}: {what}")
    try:
        timing = (
            _ensemble(spec, layout, evaluate)
            if spec.is_ensemble
            else _train_and_evaluate(spec, options, evaluate)
        )
    except Exception as exc:  # noqa: BLE001 - a failed run is reported; the experiment goes on
        log.debug("run %s failed", spec.name, exc_info=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"== {spec.name}: FAILED: {type(exc).__name__}: {first}")
        return {**entry, "status": "failed", "error": f"{type(exc).__name__}: {first}"}
    return {**entry, **timing, "status": "done"}


# ---- the comparison -----------------------------------------------------------------------------
def compare(
    paths: list[Path], layout: ExperimentDir, settings: dict, options: RunOptions, title: str
) -> list[Path]:
    """The table with CIs, DeLong p-values and cost columns, its figures and HTML report
    (``chestxai compare``'s own call) over the finished runs, the first as reference.

    ``force``: the comparison files are this experiment's own (a plain run needs an empty folder,
    --resume one of this experiment's, --force the user's word), so a re-run replaces them.
    """
    from chestxai.report.compare import compare_and_report

    result = compare_and_report(
        paths, out=layout.comparison, title=title, split="test", n_boot=settings.get("n_boot", 1000),
        force=True, speed=settings.get("speed", True), device=options.device or "auto",
        progress=options.progress,
    )  # fmt: skip
    return list(result.paths)


# ---- printing -----------------------------------------------------------------------------------
def _auc(path: Path) -> str:
    from chestxai.rundir import RunDir
    from chestxai.rundir.jsonfile import read_json

    metrics = RunDir(path).metrics_for("test")
    if not metrics.exists():
        return ""
    value = ((read_json(metrics).get("metrics") or {}).get("macro") or {}).get("roc_auc", {}).get("value")
    return f"{value:.3f}" if isinstance(value, (int, float)) else ""


def _recipe_name(path: str) -> str:
    """A shipped recipe by its name, any other by its path."""
    from chestxai.recipes import RECIPES

    return Path(path).stem if Path(path).parent == RECIPES else path


def print_plan(experiment, layout: ExperimentDir, statuses: dict[str, str]) -> None:
    print(f"experiment {experiment.name} ({experiment.path}) -> {layout.root}")
    if experiment.description:
        print(f"  {experiment.description}")
    todo = {
        "new": "train + evaluate",
        "interrupted": "resume training, evaluate",
        "finished": "skip (finished)",
    }
    for spec in experiment.runs:
        status = statuses[spec.name]
        if spec.is_ensemble:
            action = {"new": "ensemble", "interrupted": "ensemble", "finished": "skip (finished)"}.get(status)
            print(f"- {spec.name}: ensemble of {', '.join(spec.members)} [{status}: {action}]")
        else:
            c = spec.config
            print(
                f"- {spec.name}: {_recipe_name(spec.recipe)} [{status}: {todo.get(status, status)}]\n"
                f"    {c.model.name} head={c.model.head} aux={c.model.aux or '-'} "
                f"pretrained={c.model.pretrained} | {c.data.source} {c.data.root or '(cache)'} "
                f"{c.data.size}px {c.data.task or '(any task)'} | {c.train.epochs} epochs batch "
                f"{c.train.batch_size} lr {c.train.lr:g} {c.train.optimizer}"
            )
            for item in spec.overrides:
                print(f"    set {item}")
        if spec.note:
            print(f"    note: {spec.note}")
    print(f"comparison: {layout.comparison}.* over every run that finishes, the first as reference")


def print_summary(experiment, layout: ExperimentDir, results: dict, compared: list[Path] | str) -> None:
    print(f"\nexperiment {experiment.name}: {layout.root}")
    for spec in experiment.runs:
        r = results[spec.name]
        seconds = r.get("train_s", 0.0) + r.get("evaluate_s", 0.0)
        auc = _auc(layout.run(spec.name))
        line = f"  {spec.name:<20} {r['status']:<16}"
        line += f" test macro AUC {auc}" if auc else ""
        line += f"  ({seconds:.0f} s)" if r["status"] == "done" else ""
        line += f"  {r['error']}" if r.get("error") else ""
        print(line)
    if isinstance(compared, str):
        print(f"comparison: {compared}")
    elif compared:
        print("comparison: " + ", ".join(str(p) for p in compared if p.suffix in (".md", ".html")))


# ---- the whole experiment --------------------------------------------------------------------------------
def preflight_runs(experiment, path: Path) -> None:
    """Every recipe run's model checks (known model, head, input size, weights available) before the
    first run trains: a bad third entry used to fail after the first two had trained."""
    from chestxai.train.loop import preflight

    for spec in experiment.runs:
        if spec.config is None:
            continue
        try:
            preflight(spec.config)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ValueError(f"{path}: run {spec.name!r}: {reason}; nothing was trained") from None


def run_experiment(
    file: str, out: Path | None, overrides: list[str], options: RunOptions, dry_run: bool = False
) -> int:
    """Check the whole file, then train/evaluate/ensemble each run and compare those that finished.

    Returns the exit code: 1 when a run or the comparison failed (they are printed), else 0.
    """
    from chestxai.experiment.spec import load_experiment
    from chestxai.locks import exclusive
    from chestxai.rundir.jsonfile import write_json

    path = experiment_path(file)
    experiment = load_experiment(path, out, list(overrides), options.device)
    layout = ExperimentDir(out if out is not None else Path("runs") / experiment.name)
    for spec in experiment.runs:  # a run folder must not be a file the experiment writes beside it
        if spec.name in (layout.state.name, "mlflow.db", "mlartifacts") or spec.name.startswith(
            (f"{layout.comparison.name}.", f"{layout.comparison.name}_")
        ):
            raise ValueError(
                f"{path}: run name {spec.name!r} is taken by the experiment's own files; rename the run"
            )
    if dry_run:
        state = read_state(layout)
        print_plan(
            experiment, layout, {spec.name: run_status(spec, layout, state) for spec in experiment.runs}
        )
        return 0
    preflight_runs(experiment, path)
    check_folder(layout, experiment.name, read_state(layout), options)
    with exclusive(layout.root, "experiment folder"):  # a second experiment here fails at once
        state = read_state(layout)
        statuses = {spec.name: run_status(spec, layout, state) for spec in experiment.runs}
        changed = [name for name, s in statuses.items() if s == "changed"]
        if changed:
            raise ValueError(
                f"runs {changed} in {layout.root} were made with other settings than {path} gives now; delete "
                f"their folders to redo them, or give the changed runs new names"
            )
        earlier = state.get("runs") or {}
        results: dict[str, Any] = {s.name: earlier[s.name] for s in experiment.runs if s.name in earlier}
        record = {"name": experiment.name, "file": str(path), "runs": results}
        for spec in experiment.runs:
            results[spec.name] = execute(
                spec, layout, statuses[spec.name], results, options, experiment.evaluate
            )
            write_json(record, layout.state)  # after every run: a kill loses at most the run under way
        ok = [
            layout.run(s.name)
            for s in experiment.runs
            if results[s.name]["status"] in ("done", "finished earlier")
        ]
        compared: list[Path] | str = "no run finished; nothing to compare"
        if ok:
            title = f"chestxai experiment {experiment.name}"
            try:
                compared = compare(ok, layout, experiment.compare, options, title)
                record["comparison"] = {"runs": [p.name for p in ok], "files": [str(p) for p in compared]}
            except Exception as exc:  # noqa: BLE001 - the runs stay; the reason is printed and recorded
                log.debug("comparison failed", exc_info=True)
                compared = f"FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                record["comparison"] = {"runs": [p.name for p in ok], "error": compared}
        write_json(record, layout.state)
    print_summary(experiment, layout, results, compared)
    bad = [s.name for s in experiment.runs if results[s.name]["status"] in ("failed", "skipped")]
    return 1 if bad or isinstance(compared, str) else 0

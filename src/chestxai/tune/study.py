"""``chestxai tune``: an Optuna study over a recipe, one run directory per trial, resumable and shared.

The loop, per trial, is ask -> claim -> train -> tell, and ``study.json`` after each tell:

* ask and claim happen under the study mutex (:mod:`chestxai.tune.claims`), together with the
  count of trials still to run (``--trials N`` is the study's total: a re-run continues up to N,
  however many processes share it) and the sweep that marks trials of dead processes failed and
  re-queues their parameters once as a new trial (``retry_of``), whose number -- and folder --
  is new: a dead trial's half-written folder is left as it is, never trained into again.
* the sampler is TPE seeded with ``--seed`` plus the number of trials asked before: one process
  repeats its study exactly, and processes sharing the study never draw the same random startup
  points (they would with one seed each).
* a trial is a plain training run (:mod:`chestxai.tune.objective`), pruned on its per-epoch
  validation AUC by the median rule (``--pruner median``; the first ``--startup-trials`` trials
  are never pruned) or successive halving (``--pruner halving``).
* an exception in a trial marks it failed and stops the command, as Optuna's ``optimize`` does
  (usually a bug or a broken recipe, not a bad hyper-parameter); Ctrl-C marks it failed and
  re-queues it.

When all N trials are finished (and none still runs elsewhere), the best trial -- chosen on val
only -- is evaluated on test once, exactly as ``chestxai evaluate RUN`` does, and its recipe is
written to ``best.yaml``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chestxai.atomic import write_text
from chestxai.config import load_config
from chestxai.locks import exclusive
from chestxai.rundir import StudyDir
from chestxai.tune.claims import claim_state, study_mutex
from chestxai.tune.objective import Outcome, run_trial, trial_config
from chestxai.tune.settings import TuneSettings
from chestxai.tune.space import Space, load_space, parse_space_text
from chestxai.tune.storage import describe, open_storage
from chestxai.tune.summary import TEST_ATTR, best_trial, build_summary, write_best_config, write_summary

log = logging.getLogger(__name__)
#: a trial whose process died is re-queued this many times at most (one that kills its process
#: every time, e.g. out of memory at a searched batch size, must not be retried forever)
MAX_RETRIES = 2
#: recipe keys that may differ between processes of one study (paths and machines, not the experiment)
MACHINE_KEYS = {
    "data": ("root", "cache", "cache_dir", "prepare_workers"),
    "train": ("device", "threads", "precision"),  # precision: filled in by each run for its device
}


def make_sampler(seed: int, startup: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(startup, 1))


def make_pruner(kind: str, startup: int) -> Any:
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def experiment_keys(base: dict[str, Any]) -> dict[str, Any]:
    """The recipe without what may differ per machine: a study refuses a re-run that changes it."""
    out = json.loads(
        json.dumps({k: v for k, v in base.items() if k not in ("name", "run_dir", "track", "tracking_uri")})
    )
    for section, keys in MACHINE_KEYS.items():
        for key in keys:
            out.get(section, {}).pop(key, None)
    return out


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) & set(new)):  # a key added by a newer chestxai is not a change
        a, b = old[key], new[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the study, {b!r} now")
    return out


# ---- opening (or creating) the study --------------------------------------------------------------
def _open_study(storage: Any, s: TuneSettings, folder: StudyDir, space: Space, recipe: dict[str, Any]) -> Any:
    """Load or create study ``s.name`` (under the mutex); refuse a different space or recipe."""
    import optuna

    canonical = json.loads(json.dumps(space.canonical()))
    fix = "use the same --space and recipe to continue it, or another --name for a new study"
    if s.name in optuna.study.get_all_study_names(storage):
        study = optuna.load_study(study_name=s.name, storage=storage)
        stored = [study.user_attrs.get("space")]
        if folder.space.is_file():
            text = folder.space.read_text()
            stored.append(json.loads(json.dumps(parse_space_text(text, str(folder.space)).canonical())))
        if any(old is not None and old != canonical for old in stored):
            raise ValueError(
                f"study {s.name!r} was started with another search space ({folder.space}); {fix}"
            )
        old = study.user_attrs.get("recipe")
        diff = "; ".join(_differences(old, recipe)[:5]) if old is not None else ""
        if diff:
            raise ValueError(f"study {s.name!r} was started with another recipe ({diff}); {fix}")
        if not folder.space.is_file():  # another machine's folder of a study in a shared database
            write_text(folder.space, space.to_yaml())
        return study
    if any(folder.root.glob("trial-*")) or folder.space.is_file():
        raise FileExistsError(
            f"{folder.root} holds trials of a study that is not in the storage {describe(s.storage, folder)}; "
            "give its --storage to continue it, or choose another --name / --run-dir"
        )
    study = optuna.create_study(study_name=s.name, storage=storage, direction="maximize")
    study.set_user_attr("space", canonical)
    study.set_user_attr("recipe", recipe)
    write_text(folder.space, space.to_yaml())
    return study


def _counts(trials: list[Any], target: int) -> tuple[int, int, int]:
    """(finished, running, still to ask) over the trials that count: a dead trial's retry
    replaces it, re-queued (WAITING) trials are run by the next asks."""
    replaced = {t.user_attrs.get("retry_of") for t in trials}
    counted = [t for t in trials if t.number not in replaced]
    running = sum(t.state.name == "RUNNING" for t in counted)
    waiting = sum(t.state.name == "WAITING" for t in counted)
    finished = len(counted) - running - waiting
    return finished, running, max(target - finished - running, 0)


def _sweep(study: Any, folder: StudyDir, echo: Callable[[str], None]) -> None:
    """Fail RUNNING trials whose process died (claim unlocked) and re-queue their parameters."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if claim_state(folder, t.number) is not False:
            continue
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        retries = int(t.user_attrs.get("retries", 0))
        if retries < MAX_RETRIES:
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number, "retries": retries + 1})
            echo(
                f"trial {t.number} was running when its process died: marked failed, its parameters re-queued"
            )
        else:
            echo(
                f"trial {t.number} was running when its process died: marked failed ({retries} retries, no more)"
            )


# ---- the loop -------------------------------------------------------------------------------------
def _line(number: int, out: Outcome, params: dict[str, Any], planned: int) -> str:
    value = f"val_auc {out.value:.4f}" if out.value is not None else "val_auc   -   "
    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    tail = f"  error: {out.error}" if out.error else ""
    return (
        f"trial {number:4d}  {out.state:<8}  {value}  epochs {out.epochs}/{planned}  "
        f"{out.seconds:6.1f} s  {shown}{tail}"
    )


def _planned(params: dict[str, Any], default: int) -> int:
    return int(params.get("train.epochs", default))


def _frozen(study: Any, number: int) -> Any:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _run(
    trial: Any, config: Any, params: dict[str, Any], planned: int, progress: bool, study: Any
) -> Outcome:
    """Train one trial and tell Optuna how it ended (Ctrl-C: failed and re-queued, then re-raised)."""
    from optuna.trial import TrialState
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (a log file gets the one-line summaries only)
    bar = tqdm(total=planned, desc=f"trial {trial.number}", leave=False, disable=None if progress else True)

    def on_epoch_done(epoch: int, value: float) -> None:
        bar.update(1)
        bar.set_postfix(val_auc=f"{value:.4f}")

    try:
        outcome = run_trial(trial, config, on_epoch_done)
    except KeyboardInterrupt:
        trial.set_user_attr("error", "interrupted (Ctrl-C)")
        study.tell(trial, state=TrialState.FAIL)
        retries = int(trial.user_attrs.get("retries", 0))
        study.enqueue_trial(dict(params), user_attrs={"retry_of": trial.number, "retries": retries + 1})
        raise
    except Exception as exc:
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
        study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        bar.close()
    trial.set_user_attr("epochs", outcome.epochs)
    if outcome.error:
        trial.set_user_attr("error", outcome.error)
    if outcome.state == "COMPLETE":
        study.tell(trial, outcome.value)
    else:
        study.tell(trial, state=TrialState.PRUNED if outcome.state == "PRUNED" else TrialState.FAIL)
    return outcome


def _write(study: Any, folder: StudyDir, info: dict[str, Any], s: TuneSettings) -> dict[str, Any]:
    summary = build_summary(study, folder, info, s.seed)
    write_summary(summary, folder, s.force)
    return summary


def _evaluate_best(study: Any, folder: StudyDir, number: int, s: TuneSettings, device: str) -> dict[str, Any]:
    """Test metrics of trial ``number``, computed like ``chestxai evaluate RUN`` (youden thresholds
    chosen on val, patient bootstrap CIs), recorded in the study so no process repeats it."""
    from chestxai.evaluation.evaluate import evaluate_run

    run = folder.trial(number)
    result = evaluate_run(run.root, split="test", seed=s.seed, device=device, n_boot=s.n_boot, progress=False)
    macro = result["metrics"]["macro"]
    test = {
        "trial": number,
        "split": "test",
        "n_images": result.get("n_images"),
        "roc_auc": macro.get("roc_auc"),
        "accuracy": macro.get("accuracy"),
        "threshold_policy": "youden",
        "metrics": str(run.metrics.relative_to(folder.root)),
    }
    study.set_user_attr(TEST_ATTR, {**study.user_attrs.get(TEST_ATTR, {}), str(number): test})
    return test


def _finish(
    study: Any,
    folder: StudyDir,
    info: dict[str, Any],
    s: TuneSettings,
    recipe: dict[str, Any],
    device: str,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """best.yaml, then (study complete, nothing running elsewhere) test of the best trial once."""
    best = best_trial(study)
    _, running, todo = _counts(study.get_trials(deepcopy=False), s.trials)
    if best is not None:
        write_best_config(folder, s.name, best.number, best.value, recipe, s.force)
        tested = study.user_attrs.get(TEST_ATTR, {})
        if str(best.number) in tested:
            pass
        elif todo or running:
            why = f"{running} trial(s) still running elsewhere" if running else f"{todo} trial(s) to run"
            echo(
                f"test not evaluated yet ({why}): the process that finishes the study evaluates the best trial"
            )
        else:
            test = _evaluate_best(study, folder, best.number, s, device)
            auc = test["roc_auc"] or {}
            ci = auc.get("ci") or [None, None]
            shown = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if None not in ci else ""
            value = f"{auc['value']:.4f}" if auc.get("value") is not None else "n/a"
            echo(f"best trial {best.number} on test (evaluated once): ROC-AUC {value}{shown}")
    return _write(study, folder, info, s)


def run_study(s: TuneSettings, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or continue) the study; returns the summary and where the study stands."""
    import optuna
    from optuna.trial import TrialState

    from chestxai.train.data_setup import ensure_cache
    from chestxai.train.loop import preflight
    from chestxai.tune.tracking import mlflow_callback

    echo = echo or log.info
    s.check()
    base_config = load_config(s.recipe, list(s.overrides), values=s.values)
    base = base_config.to_dict()
    space = load_space(s.space, base, list(s.overrides))  # every check before any trial
    preflight(base_config)  # a missing weights file or unknown model fails here, not as trial 0
    folder = StudyDir(Path(s.run_dir) if s.run_dir else Path("runs") / s.name)
    storage = open_storage(s.storage, folder)
    recipe, planned = copy.deepcopy(base), base_config.train.epochs
    tracking = base_config.tracking  # MLflow only when asked (--set track=true or a tracking_uri)
    if tracking and not base.get("tracking_uri"):  # trials' MLflow runs beside the runs, not inside the study
        base["tracking_uri"] = f"sqlite:///{folder.root.resolve().parent / 'mlflow.db'}"
    info = {
        "storage": describe(s.storage, folder),
        "recipe": s.recipe,
        "overrides": list(s.overrides),
        "space_file": str(space.source),
        "space": space.canonical(),
        "trials_target": s.trials,
        "sampler": {"name": "TPESampler", "seed": s.seed, "n_startup_trials": max(s.startup_trials, 1)},
        "pruner": {"name": s.pruner, "n_startup_trials": s.startup_trials},
        "planned_epochs": planned,
    }
    with study_mutex(folder):
        study = _open_study(storage, s, folder, space, experiment_keys(base))
        _sweep(study, folder, echo)
        if not space.touches_data:  # one cache for every trial, prepared once (the others wait for it)
            base["data"]["cache_dir"] = str(ensure_cache(base_config.data, s.progress).resolve())
        finished, running, todo = _counts(study.get_trials(deepcopy=False), s.trials)
    busy = f", {running} running elsewhere" if running else ""
    echo(f"study {s.name} ({info['storage']}): {finished} of {s.trials} trials done{busy}, {todo} to run")
    callback = mlflow_callback(base["tracking_uri"]) if tracking else None
    started, stopped = time.monotonic(), "complete"
    while True:
        if s.timeout is not None and time.monotonic() - started > s.timeout:
            stopped = "timeout"
            break
        with contextlib.ExitStack() as claim:
            with study_mutex(folder):
                study = optuna.load_study(
                    study_name=s.name,
                    storage=storage,
                    sampler=make_sampler(s.seed + len(study.get_trials(deepcopy=False)), s.startup_trials),
                    pruner=make_pruner(s.pruner, s.startup_trials),
                )
                _sweep(study, folder, echo)
                if _counts(study.get_trials(deepcopy=False), s.trials)[2] <= 0:
                    break
                trial = study.ask()
                claim.enter_context(exclusive(folder.claim(trial.number), "trial claim"))
                try:
                    trial.set_user_attr("host", socket.gethostname())
                    trial.set_user_attr("pid", os.getpid())
                    params = space.suggest(trial)
                    config = trial_config(base, params, folder, s.name, trial.number)
                    if space.touches_data:
                        config.data.cache_dir = str(ensure_cache(config.data, s.progress).resolve())
                    folder.trial(trial.number).root.mkdir(parents=True, exist_ok=False)  # never shared
                except BaseException as exc:
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
                    study.tell(trial, state=TrialState.FAIL)
                    raise
            try:
                outcome = _run(trial, config, params, _planned(params, planned), s.progress, study)
            except BaseException:
                with study_mutex(folder):
                    _write(study, folder, info, s)
                raise
            if s.progress:
                echo(_line(trial.number, outcome, params, _planned(params, planned)))
            if callback is not None:
                callback(study, _frozen(study, trial.number))
            with study_mutex(folder):
                _write(study, folder, info, s)
    with study_mutex(folder):
        summary = _finish(study, folder, info, s, recipe, base_config.train.device, echo)
    finished, running, todo = _counts(study.get_trials(deepcopy=False), s.trials)
    return {
        "summary": summary,
        "folder": folder.root,
        "finished": finished,
        "running": running,
        "remaining": todo,
        "stopped": stopped,
    }

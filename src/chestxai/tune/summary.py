"""What a study leaves behind besides its trials: ``study.json`` and the best trial's recipe.

``study.json`` is rebuilt from the Optuna storage after every trial (atomically; any process of
the study may write it, each from the storage's current state): every trial with its state,
parameters, value, run directory (relative to the study folder), epochs run out of planned and
duration; the best trial with its test AUC once evaluated; parameter importances (fANOVA, needs
two complete trials) and what pruning saved (epochs not trained, and their estimated time).

``best.yaml`` is the best trial's resolved ``config.yaml`` as a recipe: without ``run_dir`` and
the recorded environment, named ``<study>-best``, with the recipe's own ``data.cache_dir``, so
``chestxai train --config runs/<study>/best.yaml`` trains it again into a new run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from chestxai.atomic import write_text
from chestxai.config import ENVIRONMENT_KEY, config_from_dict
from chestxai.rundir import StudyDir
from chestxai.rundir.guard import check_overwrite, has_marker
from chestxai.rundir.jsonfile import write_json
from chestxai.yamlsafe import load_yaml_file

GENERATOR = "chestxai tune"
MARKER = f'"generator": "{GENERATOR}"'
BEST_MARKER = "# written by chestxai tune"
#: study user attribute: {trial number (text): test metrics} of the trials whose test was evaluated
TEST_ATTR = "test"


def _seconds(trial: Any) -> float | None:
    return trial.duration.total_seconds() if trial.duration is not None else None


def trial_rows(study: Any, folder: StudyDir, planned_epochs: int) -> list[dict[str, Any]]:
    rows = []
    trials = study.get_trials(deepcopy=False)
    retried_as = {
        t.user_attrs["retry_of"]: t.number for t in trials if t.user_attrs.get("retry_of") is not None
    }
    for t in trials:
        run = folder.trial(t.number).root
        steps = t.intermediate_values
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": dict(t.params),
                "value": t.value,
                "run_dir": run.name if run.is_dir() else None,
                "epochs_run": int(t.user_attrs.get("epochs", max(steps, default=0))),
                "epochs_planned": int(t.params.get("train.epochs", planned_epochs)),
                "duration_s": _seconds(t),
                "started": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None,
                "intermediate": {str(k): v for k, v in sorted(steps.items())},
                "retry_of": t.user_attrs.get("retry_of"),
                "worker": f"{t.user_attrs.get('host', '?')}:{t.user_attrs.get('pid', '?')}",
                "error": t.user_attrs.get("error")
                or (
                    f"its process died; re-run as trial {retried_as[t.number]}"
                    if t.number in retried_as
                    else None
                ),
            }
        )
    return rows


def pruning_savings(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Epochs pruning did not train, and their time at each pruned trial's own seconds per epoch."""
    done = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]
    pruned = [r for r in done if r["state"] == "PRUNED"]
    saved_s = sum(
        (r["epochs_planned"] - r["epochs_run"]) * (r["duration_s"] or 0) / max(r["epochs_run"], 1)
        for r in pruned
    )
    spent = sum(r["duration_s"] or 0 for r in done)
    return {
        "pruned_trials": len(pruned),
        "epochs_run": sum(r["epochs_run"] for r in done),
        "epochs_planned": sum(r["epochs_planned"] for r in done),
        "time_s": spent,
        "estimated_time_saved_s": saved_s,
        "estimated_fraction_saved": saved_s / (spent + saved_s) if spent + saved_s > 0 else 0.0,
    }


def importances(study: Any, seed: int) -> dict[str, Any]:
    """fANOVA importances of the parameters over complete trials, or why there are none."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return {"values": None, "note": f"needs at least 2 complete trials (have {len(complete)})"}
    try:
        values = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return {"values": None, "note": f"not computable: {exc}"}
    values = {k: float(v) for k, v in values.items() if math.isfinite(v)}
    if not values:
        return {"values": None, "note": "no parameter varied among the complete trials"}
    return {"values": values, "note": f"fANOVA over {len(complete)} complete trials (seed {seed})"}


def best_trial(study: Any) -> Any | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def build_summary(study: Any, folder: StudyDir, info: dict[str, Any], seed: int) -> dict[str, Any]:
    """The ``study.json`` dict; ``info`` carries the settings (space, target trials, storage...)."""
    rows = trial_rows(study, folder, info["planned_epochs"])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    best = best_trial(study)
    tested = study.user_attrs.get(TEST_ATTR, {})
    best_entry = None
    if best is not None:
        row = next(r for r in rows if r["number"] == best.number)
        best_entry = {
            "number": best.number,
            "value": best.value,
            "params": dict(best.params),
            "run_dir": row["run_dir"],
            "epochs_run": row["epochs_run"],
            "test": tested.get(str(best.number)),
        }
    return {
        "generator": GENERATOR,
        "name": study.study_name,
        "metric": "val_auc",
        "direction": "maximize",
        **{k: v for k, v in info.items() if k != "planned_epochs"},
        "counts": counts,
        "retried": sorted(r["retry_of"] for r in rows if r["retry_of"] is not None),
        "best": best_entry,
        "test_evaluated": sorted(int(k) for k in tested),
        "importances": importances(study, seed),
        "pruning": pruning_savings(rows),
        "trials": rows,
    }


def write_summary(summary: dict[str, Any], folder: StudyDir, force: bool = False) -> Path:
    check_overwrite(folder.summary, force, has_marker(MARKER), "study summary")
    return write_json(summary, folder.summary)


def write_best_config(
    folder: StudyDir, study_name: str, number: int, value: float, recipe: dict[str, Any], force: bool = False
) -> Path:
    """``best.yaml`` from trial ``number``'s config.yaml (see the module docstring); ``recipe``
    gives the recipe's own ``data.cache_dir`` and ``tracking_uri`` (the study filled both in)."""
    trial = folder.trial(number)
    raw = load_yaml_file(trial.config) or {}
    raw.pop(ENVIRONMENT_KEY, None)
    raw.pop("run_dir", None)
    raw["name"] = f"{study_name}-best"
    raw.setdefault("data", {})["cache_dir"] = recipe["data"]["cache_dir"]
    raw["tracking_uri"] = recipe["tracking_uri"]
    config_from_dict(raw, str(trial.config))  # still a valid recipe
    check_overwrite(folder.best_config, force, has_marker(BEST_MARKER), "best recipe")
    head = (
        f"{BEST_MARKER} from trial {number} of study {study_name!r} (val AUC {value:.4f}).\n"
        f"# Train it again: chestxai train --config {folder.best_config}\n"
    )
    write_text(folder.best_config, head + yaml.safe_dump(raw, sort_keys=False))
    return folder.best_config

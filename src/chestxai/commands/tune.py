"""``chestxai tune``: hyper-parameter search over a recipe (Optuna: TPE + pruning on val AUC)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chestxai.commands._common import add_common_flags, add_n_boot
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.config import RunConfig
from chestxai.tune.settings import TuneSettings

#: recipe keys a tune flag sets for every trial (the flag is RunConfig's own)
TRIAL_FLAGS = ("train.device",)

EPILOG = """\
examples:
  chestxai tune --config pneumoniamnist_resnet18 --space pneumoniamnist_quick --trials 24 --name pmnist-tpe
  chestxai tune --config configs/nih_densenet121.yaml --space my_space.yaml --trials 40 --name nih-tpe \\
      --set data.root=/data/ChestX-ray14 --pruner halving --timeout 36000
  chestxai train --config runs/pmnist-tpe/best.yaml           # the best trial's recipe, trained again

The space is a YAML file over recipe keys (configs/spaces/ holds shipped ones):
  train.lr: {log_uniform: [1e-5, 1e-2]}
  train.batch_size: {choice: [64, 128]}
  model.dropout: {uniform: [0, 0.5]}
  train.epochs: {int: [5, 20]}            # int also takes step: N or log: true
It is checked against the recipe before any trial. Every trial is a run directory
runs/NAME/trial-NNNN/, selected on val only; runs/NAME/study.json lists every trial,
runs/NAME/best.yaml is the best trial's recipe, runs/NAME/report.html the study report. When the
study is complete the best trial alone is evaluated on test (like `chestxai evaluate`).

Resume: re-run the same command; the study continues up to --trials in total, and a trial whose
process died is marked failed and its parameters re-queued. Share one study between processes
or machines: run the same command in each, on one study folder (e.g. on a shared file system;
the journal runs/NAME/study.journal is the default storage), or give them one database with
--storage sqlite:///study.db / postgresql://user@host/db.

Exit code 1 when trials ran and every one failed (no best trial): the error line says how many
failed and the first trial's error (study.json and the report list them all).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tune",
        help="hyper-parameter search over a recipe (Optuna TPE, pruning on val AUC)",
        description="Search a recipe's hyper-parameters with Optuna: TPE sampling, median or successive-"
        "halving pruning on the per-epoch validation AUC, one run directory per trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # one flag per TuneSettings field declared with a flag: help, choices, range and type from the field
    add_setting_flags(p, TuneSettings)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key for every trial, e.g. --set data.root=/data (repeatable)",
    )
    # --device is the trials' train.device (RunConfig's field: "not given" keeps the recipe's)
    add_setting_flags(p, RunConfig, only=TRIAL_FLAGS, default_note="default: the recipe's")
    add_n_boot(p, "bootstrap replicates for the test CI")
    add_common_flags(p, device=False)  # --seed is TuneSettings.seed above
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    try:
        import optuna
    except ImportError:
        raise ValueError("chestxai tune needs Optuna: pip install 'chestxai[tune]'") from None
    from tqdm.auto import tqdm

    from chestxai.report.tune import build_tune_report
    from chestxai.rundir import StudyDir
    from chestxai.tune import run_study

    optuna.logging.set_verbosity(logging.WARNING)  # one line per trial comes from us
    settings = TuneSettings(
        **setting_values(args, TuneSettings),
        overrides=list(args.set),
        values=setting_values(args, RunConfig, only=TRIAL_FLAGS),
        progress=not args.no_progress,
        n_boot=args.n_boot,
    )
    result = run_study(settings, tqdm.write)  # tqdm.write: lines above any progress bar
    summary, folder = result["summary"], result["folder"]
    report = build_tune_report(folder, force=settings.force)
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(summary["counts"].items()))
    retried = (
        f"; trials {summary['retried']} died with their process and were re-run" if summary["retried"] else ""
    )
    lines = [
        f"study {summary['name']}: {result['finished']} of {settings.trials} trials finished ({counts}{retried})"
    ]
    if result["stopped"] == "timeout":
        lines.append(
            f"stopped by --timeout; {result['remaining']} trial(s) left: re-run the command to continue"
        )
    best = summary["best"]
    if best:
        shown = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items()
        )
        lines.append(f"best trial {best['number']}: val AUC {best['value']:.4f}  {shown}")
        lines.append(f"best recipe: chestxai train --config {StudyDir(folder).best_config}")
    lines.append(f"report: {report}")
    print("\n".join(lines))
    failure = no_trial_completed(summary)
    if failure:
        print(f"chestxai tune: error: {failure}", file=sys.stderr)
        return 1
    return 0


def no_trial_completed(summary: dict[str, Any]) -> str | None:
    """Why the study has no result when trials ran and every one of them failed, else None.

    A study whose trials all failed (val with one class, a recipe that breaks at a searched value)
    used to end with exit code 0 and no best trial, so a script or CI job took it for success."""
    counts = summary["counts"]
    failed = counts.get("FAIL", 0)
    if summary["best"] is not None or not failed or counts.get("COMPLETE", 0) or counts.get("PRUNED", 0):
        return None
    total = sum(counts.values())
    first = next((t for t in summary["trials"] if t["state"] == "FAIL" and t.get("error")), None)
    error = f"; first error (trial {first['number']}): {first['error']}" if first else ""
    return f"no trial completed: {failed} of {total} trial(s) failed{error}"

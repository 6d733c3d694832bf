"""``chestxai experiment FILE.yaml``: train and evaluate a list of recipes, then compare them in one report.

Only the flags live here; the resumable orchestrator is the package :mod:`chestxai.experiment`
(the file format in ``experiment.spec``, the runs and the comparison in ``experiment.runner``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chestxai.commands._common import add_common_flags

EPILOG = """\
examples:
  chestxai experiment configs/experiments/pneumoniamnist_architectures.yaml
  chestxai experiment siim_architectures --set data.root=/data/siim --dry-run
  chestxai experiment siim_architectures --set data.root=/data/siim --resume   # after a stop
  chestxai experiment my.yaml --out results/exp1 --set train.epochs=2 --device cuda

Shipped experiment files: configs/experiments/*.yaml (a name works too, e.g. siim_architectures).
Writes OUT/<run>/ (ordinary run directories), OUT/comparison.* (the compare table and report) and
OUT/experiment.json (each run's status, settings, timings and error). OUT (default runs/<name>)
must be new or empty unless --resume (continue: finished runs are skipped, interrupted ones resume
from last.pt) or --force (write into a non-empty folder). Runs are never overwritten: to redo one,
delete its folder. Exit code 1 when a run or the comparison failed (they are listed).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="train + evaluate a list of recipes and compare them in one report",
        description="Run every entry of an experiment file (named runs: a recipe with overrides, or an "
        "ensemble of earlier runs), evaluate each on test, and compare them (table with CIs, DeLong p-values, "
        "cost columns, figures, HTML report). The whole file is checked before the first run starts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="experiment YAML, or the name of a shipped one (configs/experiments/)")
    p.add_argument("--out", help="experiment folder (default runs/<experiment name>)")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="continue: skip finished runs, resume interrupted ones",
    )
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write into a non-empty --out folder",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key in every run, e.g. --set data.root=/data/siim (repeatable; applied last)",
    )
    p.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="print the plan (runs, settings, status) and stop",
    )
    add_common_flags(p, device_default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.experiment.runner import RunOptions, run_experiment

    options = RunOptions(
        resume=args.resume, force=args.force, device=args.device, progress=not args.no_progress
    )
    out = Path(args.out) if args.out else None
    return run_experiment(args.file, out, list(args.set), options, dry_run=args.dry_run)

"""``chestxai report``: one self-contained HTML page per run."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import add_common_flags


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="build RUN/report.html (self-contained: figures embedded)",
        description="Build RUN/report.html from the run directory: dataset summary, config, training "
        "curves, metrics with CIs, figures and, when RUN/cams/index.csv exists, a gallery of true/false "
        "positives and negatives with heatmaps. Run `chestxai evaluate RUN` first.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument(
        "--out",
        default=None,
        help="output file (default RUN/report.html); an existing file that is not a chestxai report is refused",
    )
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="replace --out even if it is not a chestxai report",
    )
    add_common_flags(p, device=False)  # --progress/--no-progress like every command (it draws no bar)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.report import build_report
    from chestxai.rundir import RunDir, StudyDir
    from chestxai.rundir.guard import refuse_while_training

    refuse_while_training(args.run, "report on it")

    if StudyDir(args.run).summary.is_file() and not RunDir(args.run).checkpoint.exists():
        if args.out:
            raise ValueError(
                f"{args.run} is a study (chestxai tune); its report is always STUDY/report.html, drop --out"
            )
        from chestxai.report.tune import build_tune_report

        print(f"wrote {build_tune_report(args.run, force=args.force)}")
        return 0

    print(f"wrote {build_report(args.run, out=args.out, force=args.force)}")
    return 0

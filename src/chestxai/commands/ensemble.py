"""``chestxai ensemble``: combine evaluated runs by weighted probability averaging."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chestxai.commands._common import add_common_flags, add_figures_flag, add_n_boot


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="combine runs by weighted probability averaging (weights fitted on val)",
        description="Combine several evaluated runs (same cache and splits; run `chestxai evaluate` on each "
        "first) by a weighted average of their probabilities. Weights minimise the validation log-loss; the "
        "ensemble is scored on the test split. OUT becomes a complete run directory (ensemble.json, config.yaml, "
        "splits.csv, predictions.csv, metrics.json, thresholds.json, figures/) that `chestxai compare`, `report` "
        "and `evaluate` read like any run.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories holding predictions.csv")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("--threshold-policy", default="youden", help="as in `chestxai evaluate`")
    add_n_boot(p, "bootstrap resamples for the CIs")
    add_figures_flag(p)
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write into a non-empty --out folder",
    )
    add_common_flags(p, device=False)  # --progress/--no-progress like every command (it draws no bar)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.evaluation.ensemble_runs import ensemble_runs

    result = ensemble_runs(
        [Path(r) for r in args.runs], Path(args.out), split=args.split,
        threshold_policy=args.threshold_policy, n_boot=args.n_boot,
        figures=not args.no_figures, force=args.force,
    )  # fmt: skip
    print(json.dumps({"weights": result["weights"], "val_log_loss": result["val_log_loss"]}, indent=2))
    print(f"ensemble written to {args.out}")
    return 0

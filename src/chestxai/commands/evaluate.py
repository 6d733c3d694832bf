"""``chestxai evaluate``: metrics with confidence intervals, thresholds, calibration and figures."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
examples:
  chestxai evaluate runs/resnet18
  chestxai evaluate runs/resnet18 --threshold-policy sensitivity:0.95
  chestxai evaluate runs/resnet18 --data cache/other-224px-ab12cd34ef --split test

Predicts the validation and the evaluated split, chooses operating thresholds on validation
(stored in RUN/checkpoint.pt so prediction uses them), fits a calibration temperature on
validation, and writes RUN/predictions.csv, RUN/metrics.json and RUN/figures/. Confidence
intervals resample patients (clustered bootstrap) when the cache has patient ids.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a trained run: metrics with CIs, thresholds, calibration, figures",
        description="Evaluate RUN on a split of its prepared cache (or of --data).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run directory holding checkpoint.pt")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument(
        "--data", default=None, help="prepared cache to evaluate on (default: the run's training cache)"
    )
    p.add_argument(
        "--threshold-policy",
        default="youden",
        help="youden, a fixed number such as 0.5, sensitivity:0.95 or specificity:0.95 (default youden)",
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="inference batch size (default 256)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument(
        "--keep-thresholds", action="store_true", help="do not store the chosen thresholds in the checkpoint"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.evaluation.evaluate import evaluate_run
    from chestxai.evaluation.thresholds import parse_policy

    parse_policy(args.threshold_policy)  # fail on a bad flag before loading anything
    result = evaluate_run(
        args.run,
        split=args.split,
        data=args.data,
        threshold_policy=args.threshold_policy,
        n_boot=args.n_boot,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        figures=not args.no_figures,
        store_thresholds=not args.keep_thresholds,
        progress=True,
    )
    m = result["metrics"]
    lines = [f"{result['split']}: {result['n_images']} images, {result['n_patients']} patients"]
    for key in ("roc_auc", "average_precision", "f1", "recall", "specificity"):
        v = m["macro"][key]
        if v["value"] is not None:
            lo, hi = v["ci"]
            ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None else ""
            lines.append(f"  macro {key:<18} {v['value']:.3f}{ci}")
    lines.append(f"wrote {result['run']}/metrics.json, predictions.csv, figures/")
    print("\n".join(lines))
    return 0

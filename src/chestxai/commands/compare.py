"""``chestxai compare``: evaluated runs side by side with significance against the first and
what each cost, as tables, figures and one self-contained HTML report."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import add_common_flags, add_n_boot

EPILOG = """\
examples:
  chestxai compare runs/resnet18 runs/densenet121 runs/vit_small
  chestxai compare runs/a runs/b --out results/a_vs_b
  chestxai compare runs/a runs/b --out results/a_vs_b --force --remeasure --threads 2
  chestxai compare runs/a runs/b --out results/quick --no-speed

Writes OUT.md, OUT.csv, OUT_per_class.csv, OUT.html and the figures OUT_roc.png, OUT_metrics.png,
OUT_thresholds.png, OUT_confidence.png (refusing to replace existing ones without --force):
macro metrics with 95% CIs, p-values for the ROC-AUC difference to the first run (DeLong per
class, paired patient-level bootstrap for the macro AUC) and the cost of each run: params,
checkpoint_mb, train_time_s, train_images_per_s and peak_memory_mb (from history.csv, recorded
on the training machine), infer_images_per_s_b1/_b32 and latency (measured here through the
run's predict path on random images at its input size, cached per machine in RUN/cost.json, so
a second compare does not measure again). Every run must have been evaluated
(`chestxai evaluate RUN`) on the same test images.
"""


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--threads must be >= 0 (0 = torch's default), got {value}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare evaluated runs (metrics with CIs, DeLong p-values, cost, figures, HTML report)",
        description="Compare evaluated runs on the same test images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories; the first is the reference")
    p.add_argument("--split", default="test", help="evaluated split to compare (default test)")
    p.add_argument("--out", default="compare", help="output path prefix (default ./compare)")
    p.add_argument("--title", default=None, help="title of OUT.html (default: the run names)")
    add_n_boot(p, "paired bootstrap replicates")
    p.add_argument(
        "--speed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure inference speed (--no-speed: the infer_* columns stay empty, with the reason)",
    )
    p.add_argument(
        "--remeasure",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="measure inference speed again even if RUN/cost.json has it",
    )
    p.add_argument(
        "--threads", type=_threads, default=0, help="torch CPU threads while measuring (0 = torch's default)"
    )
    add_common_flags(p, device=True, progress=True, seed=True, seed_help="bootstrap seed")
    p.add_argument(
        "--force", action=argparse.BooleanOptionalAction, default=False, help="replace existing OUT.* files"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.report.compare import compare_and_report

    result = compare_and_report(
        args.runs,
        out=args.out,
        title=args.title,
        split=args.split,
        n_boot=args.n_boot,
        seed=args.seed,
        force=args.force,
        speed=args.speed,
        remeasure=args.remeasure,
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
    )
    print(result.paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in result.paths))
    return 0

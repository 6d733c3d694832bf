"""``chestxai compare``: evaluated runs side by side with significance against the first."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import add_common_flags

EPILOG = """\
examples:
  chestxai compare runs/resnet18 runs/densenet121 runs/vit_small
  chestxai compare runs/a runs/b --out results/a_vs_b

Writes OUT.md, OUT.csv and OUT_per_class.csv (refusing to replace existing ones without --force): macro metrics with 95% CIs, parameter count,
training time and images/s (from history.csv), and p-values for the ROC-AUC difference to the
first run (DeLong per class, paired patient-level bootstrap for the macro AUC). Every run must
have been evaluated (`chestxai evaluate RUN`) on the same test images.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare evaluated runs (table with CIs and DeLong p-values)",
        description="Compare evaluated runs on the same test images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", help="run directories; the first is the reference")
    p.add_argument("--split", default="test", help="evaluated split to compare (default test)")
    p.add_argument("--out", default="compare", help="output path prefix (default ./compare)")
    p.add_argument("--n-boot", type=int, default=2000, help="paired bootstrap replicates (default 2000)")
    add_common_flags(p, device=False, progress=False, seed=True, seed_help="bootstrap seed")
    p.add_argument("--force", action="store_true", help="replace existing OUT.md/.csv/_per_class.csv files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.evaluation.compare import compare_runs

    result = compare_runs(
        args.runs, split=args.split, out=args.out, n_boot=args.n_boot, seed=args.seed, force=args.force
    )
    print(result.paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in result.paths))
    return 0

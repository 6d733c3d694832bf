"""``chestxai uncertainty``: MC dropout, test-time augmentation or an ensemble; referral analysis."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import RegistryChoices, add_common_flags, add_figures_flag, add_n_boot

EPILOG = """\
examples:
  chestxai uncertainty runs/pmnist-dropout                       # MC dropout, 30 passes, test split
  chestxai uncertainty runs/resnet18 --method tta --passes 16
  chestxai uncertainty runs/resnet18 --dropout 0.2              # dropout inserted at inference (labelled)
  chestxai uncertainty runs/ens --method ensemble               # members of an ensemble run
  chestxai uncertainty runs/a runs/b runs/c --method ensemble   # several runs (written under runs/a;
                                                                 # weights and thresholds fitted on val)
  chestxai uncertainty runs/resnet18 --conformal --alpha 0.1     # split-conformal guarantee, no sampling
  chestxai uncertainty runs/mc --conformal --class-conditional --conformal-score aps

Writes RUN/uncertainty/METHOD/predictions.csv (val and evaluated split: mean probability, std,
entropy, mutual information, decision at the run's operating threshold per label),
uncertainty.json (referral curves with patient-bootstrap CIs beside random, confidence, softmax
(1 - max p, or the distance of p from 0.5) and oracle referral; AURC/AUGRC; the share to refer for sensitivity 0.95 / specificity 0.90 chosen on val and
applied to the split; calibration of the averaged probabilities beside the deterministic model;
the gallery) and figures/ + heatmaps/. The run's own predictions.csv and metrics.json are never
touched. MC dropout switches only dropout layers to train mode (batch norm stays in eval); a run
trained without dropout needs --dropout P (inserted at inference) or another method.

--conformal instead calibrates on the val rows of RUN/predictions.csv and measures on its test rows
(exchangeability of val and test is the assumption): multi-class runs get prediction sets (LAC or
APS, --class-conditional per class), binary runs a triage into negative / positive / refer with
FNR and FPR each <= alpha, multi-label runs conformal risk control of the FNR. Writes
RUN/uncertainty/conformal/ (conformal.csv per image, uncertainty.json's `conformal` entry; see
docs/CONFORMAL.md); `predict` and `serve` then return each image's set or triage bin.
"""


def _passes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--passes must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--passes must be >= 1, got {value}")
    return value


def _dropout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--dropout must be a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"--dropout must be in [0, 1), got {value}")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alpha must be a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"--alpha must be in (0, 1), got {value}")
    return value


def _methods() -> list[str]:
    from chestxai.uncertainty.methods import list_methods

    return list_methods()


#: ``--method``: the registered uncertainty methods, read when a value is checked or help printed
METHODS = RegistryChoices(_methods)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "uncertainty",
        help="MC dropout / TTA / ensemble uncertainty and referral analysis of a run",
        description="Measure RUN's predictive uncertainty and which cases to refer to a radiologist.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run", metavar="RUN", help="run directory (checkpoint.pt, or ensemble.json with --method ensemble)"
    )
    p.add_argument("more_runs", nargs="*", metavar="RUN", help="more runs: the members of --method ensemble")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="mc-dropout",
        metavar="METHOD",
        help="%(choices)s (default mc-dropout)",
    )
    p.add_argument("--passes", type=_passes, default=30, help="stochastic passes per image (default 30)")
    p.add_argument(
        "--split", default="test", help="split to analyse (default test; val picks referral cut-offs)"
    )
    p.add_argument(
        "--dropout", type=_dropout, default=None, help="insert/override head dropout p at inference"
    )
    add_n_boot(p, "bootstrap replicates for the CIs")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--gallery", type=int, default=4, help="cases per gallery list (default 4)")
    add_figures_flag(p)
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write into a folder this command did not write",
    )
    c = p.add_argument_group(
        "conformal (--conformal: no sampling; the flags above except --n-boot, --seed, --force do not apply)"
    )
    c.add_argument(
        "--conformal",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="split-conformal calibration on val, measured on test (sets / triage / FNR control by task)",
    )
    c.add_argument(
        "--alpha", type=_alpha, default=None, help="miscoverage (or FNR) level in (0, 1) (default 0.1)"
    )
    c.add_argument(
        "--class-conditional",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="multi-class: one threshold per class (coverage >= 1 - alpha within every class)",
    )
    c.add_argument(
        "--conformal-score", choices=("lac", "aps"), default=None, help="multi-class set score (default lac)"
    )
    add_common_flags(p, seed=True, seed_help="seed of the passes and the bootstrap")
    p.set_defaults(func=run)


def _rate(r: dict) -> str:
    lo, hi = r["ci"]
    return f"{r['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def _conformal(args: argparse.Namespace) -> int:
    from chestxai.uncertainty.conformal import HELD, MISSED, guarantee_missed
    from chestxai.uncertainty.conformal_stage import conformal_run

    if args.more_runs:
        raise ValueError("--conformal calibrates one run; give one RUN")
    r = conformal_run(
        args.run, 0.1 if args.alpha is None else args.alpha, score=args.conformal_score or "lac",
        class_conditional=args.class_conditional,
        n_boot=args.n_boot, seed=args.seed, force=args.force,
    )  # fmt: skip
    c = r["conformal"]
    head = c.get("coverage") or c.get("fnr")
    what = "FNR" if "fnr" in c else "coverage"
    lines = [
        f"conformal {c['method']} at alpha {c['alpha']}, calibrated on {c['calibrated_on']['n_images']} val images",
        f"  test {what} {_rate(head)} on {head['n']} images; "
        f"mean set size {c['mean_set_size']:.2f}"
        + (f"; referred {c['share_referred']:.1%}" if c.get("share_referred") is not None else ""),
    ]
    if "triage" in c["test"]:
        t = c["test"]["triage"]
        lines.append(
            "  " + "; ".join(f"{key.upper()} {_rate(t[key])}" for key in ("fnr", "fpr", "npv", "ppv"))
        )
    lines.append(f"  assumption: {c['assumption']}")
    lines.append(f"  {'warning: ' + MISSED if guarantee_missed(c) else HELD}")
    lines.append(f"wrote {r['run']}/uncertainty/conformal/")
    print("\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    from chestxai.uncertainty.stage import uncertainty_run

    if args.conformal:
        return _conformal(args)
    given = [
        f for f, v in (("--alpha", args.alpha), ("--conformal-score", args.conformal_score)) if v is not None
    ]
    if given or args.class_conditional:
        raise ValueError(f"{', '.join(given or ['--class-conditional'])} only applies with --conformal")

    result = uncertainty_run(
        args.run,
        method=args.method,
        passes=args.passes,
        split=args.split,
        dropout=args.dropout,
        members=args.more_runs,
        n_boot=args.n_boot,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        n_gallery=args.gallery,
        figures=not args.no_figures,
        force=args.force,
        progress=not args.no_progress,
    )
    lines = [f"{result['method']} on {result['split']}: {result['n_images']} images ({result['batching']})"]
    if result.get("dropout"):
        lines.append(f"  dropout: {result['dropout']}")
    for name, rows in result["referral"].items():
        cells = [
            f"{r['fraction']:.0%}: {r['roc_auc']:.3f}" for r in rows if r["fraction"] in (0.0, 0.1, 0.2, 0.3)
        ]
        cells = [c for c in cells]
        lines.append(f"  ROC-AUC retained by {name:<18} " + "  ".join(cells))
    lines.append(f"wrote {result['run']}/uncertainty/{result['method']}/")
    print("\n".join(lines))
    return 0

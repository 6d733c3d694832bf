"""``chestxai quickstart``: the main job - PneumoniaMNIST end to end on a laptop CPU.

Gets PneumoniaMNIST (the cached/local copy, or downloads it), trains the shipped ResNet-18 recipe
with model selection on ``val``, evaluates on ``test`` with confidence intervals, explains test
images with Grad-CAM, and writes the HTML report. Every step is the same function the individual
commands run, so the quickstart is also a smoke test of the whole pipeline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from chestxai.commands._common import add_common_flags

RECIPE = "pneumoniamnist_resnet18"
# MedMNIST v2 (Yang et al., Scientific Data 2023), PneumoniaMNIST test split: AUC / ACC
PUBLISHED = {
    "ResNet-18 (28)": (0.944, 0.854),
    "ResNet-50 (224)": (0.962, 0.884),
    "Google AutoML Vision": (0.991, 0.946),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="train, evaluate, explain and report on PneumoniaMNIST (CPU, minutes)",
        description="The main job: PneumoniaMNIST -> ResNet-18 (recipe configs/pneumoniamnist_resnet18.yaml) "
        "-> test metrics with 95%% CIs -> Grad-CAM overlays -> report.html. The dataset is read from "
        "$CHESTXAI_DOWNLOADS (or the chestxai cache), downloaded there when missing.",
    )
    p.add_argument(
        "--run-dir", default="runs/quickstart", help="where to write the run (a new one if it exists)"
    )
    p.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    p.add_argument("--explain", type=int, default=32, metavar="N", help="test images to explain (0 = skip)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any recipe key")
    add_common_flags(p, device_default=None)
    p.set_defaults(func=run)


def fresh_run_dir(path: Path) -> Path:
    """``path`` if unused, else ``path-2``, ``path-3``...: a quickstart never overwrites a run."""
    if not path.exists():
        return path
    for i in range(2, 10_000):
        candidate = path.with_name(f"{path.name}-{i}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"too many runs named {path.name}-N; pass --run-dir")


def run(args: argparse.Namespace) -> int:
    from chestxai.config import load_config
    from chestxai.evaluation.evaluate import evaluate_run
    from chestxai.explain.run import explain_run
    from chestxai.report.build import build_report
    from chestxai.train.loop import train

    started = time.perf_counter()
    run_dir = fresh_run_dir(Path(args.run_dir))
    # flags go in as typed values, not "key=value" text: a run directory "runs/exp #2" stays whole
    values = {"run_dir": str(run_dir), "train.epochs": args.epochs or None, "train.device": args.device}
    config = load_config(RECIPE, list(args.set), values=values)
    progress = not args.no_progress
    on = {"device": args.device} if args.device else {}  # unset: each step keeps its own default

    print(f"[1/4] training {config.model.name} on PneumoniaMNIST -> {run_dir}")
    train(config, progress=progress)
    print("[2/4] evaluating on the test split (thresholds chosen on val)")
    metrics = evaluate_run(run_dir, split="test", progress=progress, **on)
    if args.explain:
        print(f"[3/4] explaining {args.explain} test images with Grad-CAM")
        explain_run(run_dir, method="gradcam", split="test", limit=args.explain, progress=progress, **on)
    else:
        print("[3/4] explanations skipped (--explain 0)")
    print("[4/4] writing the report")
    report = build_report(run_dir)

    auc, acc = headline(metrics)
    minutes = (time.perf_counter() - started) / 60
    print(f"\nPneumoniaMNIST test: ROC-AUC {auc:.3f}, accuracy {acc:.3f}  ({minutes:.1f} min)")
    print("published (MedMNIST v2, test):")
    for name, (p_auc, p_acc) in PUBLISHED.items():
        print(f"  {name:22s} AUC {p_auc:.3f}  ACC {p_acc:.3f}")
    print(f"report: {report}")
    return 0


def headline(metrics: dict) -> tuple[float, float]:
    """Test ROC-AUC and accuracy (at the threshold chosen on val) from an evaluate_run result."""
    macro = metrics["metrics"]["macro"]
    return float(macro["roc_auc"]["value"]), float(macro["accuracy"]["value"])

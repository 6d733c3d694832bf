"""``chestxai quickstart``: the main job - PneumoniaMNIST end to end on a laptop CPU.

Gets PneumoniaMNIST (the cached/local copy, or downloads it), trains the shipped ResNet-18 recipe
with model selection on ``val``, evaluates on ``test`` with confidence intervals, explains test
images, and writes the HTML report.

Explanations: at the deepest layer whose map is at least 7 x 7 (``layer1`` at 28 px), each with
the random control, faithfulness on logits, border energy and the randomisation sanity check, so a
first report says whether its heatmaps mean something. The gallery shows **HiResCAM**; Grad-CAM
is measured beside it (no overlays) because it is what users expect, and the report says why it
is not shown: measured on this recipe (docs/BENCHMARKS.md), Grad-CAM's channel-averaged gradients
at ``layer1`` cancel to an empty map on most test images and it does not beat the random control
on deletion, insertion or ROAD, while HiResCAM (gradient x activation per position, Draelos &
Carin 2020) beats it on all three. Every step is the same function the individual
commands run, so the quickstart is also a smoke test of the whole pipeline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from chestxai.commands._common import add_common_flags
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.config import RunConfig

RECIPE = "pneumoniamnist_resnet18"
#: the recipe keys quickstart offers as flags (the train command's spelling, generated from RunConfig)
FLAGS = ("train.epochs", "train.device", "track")
EXPLAIN_METHOD = "hirescam"  # shown in the gallery (see the module doc for why)
BASELINE_METHOD = "gradcam"  # measured beside it, no overlays
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
        "-> test metrics with 95% CIs -> HiResCAM overlays (Grad-CAM measured beside them, both against the "
        "random control, with the randomisation sanity check) -> report.html. The dataset is read from "
        "$CHESTXAI_DOWNLOADS (or the chestxai cache), downloaded there when missing.",
    )
    p.add_argument(
        "--run-dir", default="runs/quickstart", help="where to write the run (a new one if it exists)"
    )
    add_setting_flags(p, RunConfig, only=FLAGS, default_note="default: the recipe's")
    p.add_argument("--explain-limit", dest="explain", type=int, default=32, metavar="N",
                   help="test images to explain (0 = skip)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any recipe key")
    add_common_flags(p, device=False)  # --device is train.device above
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
    from chestxai.explain.settings import ExplainSettings
    from chestxai.report.build import build_report
    from chestxai.train.loop import train

    started = time.perf_counter()
    run_dir = fresh_run_dir(Path(args.run_dir))
    # flags go in as typed values, not "key=value" text: a run directory "runs/exp #2" stays whole
    values = {**setting_values(args, RunConfig, only=FLAGS), "run_dir": str(run_dir)}
    config = load_config(RECIPE, list(args.set), values=values)
    progress = not args.no_progress
    on = {"device": args.device} if args.device else {}  # unset: each step keeps its own default

    print(f"[1/4] training {config.model.name} on PneumoniaMNIST -> {run_dir}")
    train(config, progress=progress)
    print("[2/4] evaluating on the test split (thresholds chosen on val)")
    metrics = evaluate_run(run_dir, split="test", progress=progress, **on)
    if args.explain:
        print(
            f"[3/4] explaining {args.explain} test images with HiResCAM and Grad-CAM "
            f"(random control, sanity check)"
        )
        explained = [
            explain_run(
                run_dir,
                method=name,
                split="test",
                limit=args.explain,
                progress=progress,
                sanity=True,
                settings=ExplainSettings(overlays=name == EXPLAIN_METHOD, faithfulness_limit=args.explain),
                **on,
            )
            for name in (EXPLAIN_METHOD, BASELINE_METHOD)
        ]
    else:
        print("[3/4] explanations skipped (--explain-limit 0)")
    print("[4/4] writing the report")
    report = build_report(run_dir)

    auc, acc = headline(metrics)
    minutes = (time.perf_counter() - started) / 60
    print(f"\nPneumoniaMNIST test: ROC-AUC {auc:.3f}, accuracy {acc:.3f}  ({minutes:.1f} min)")
    print("published (MedMNIST v2, test):")
    for name, (p_auc, p_acc) in PUBLISHED.items():
        print(f"  {name:22s} AUC {p_auc:.3f}  ACC {p_acc:.3f}")
    if args.explain:
        for result in explained:
            for line in explanation_summary(result.metrics):
                print(line)
    print(f"report: {report}")
    return 0


def explanation_summary(entry: dict) -> list[str]:
    """Lines on what the quickstart's heatmaps are worth: faithfulness beside the random control,
    border energy, the sanity verdict and every warning (also in explain_metrics.json)."""
    grid = "x".join(map(str, entry.get("grid") or []))
    lines = [f"{entry.get('method')} at {entry.get('layer')} ({grid} map):"]
    faith, vs = entry.get("faithfulness") or {}, entry.get("vs_control") or {}
    for key, better in (("deletion_auc", "lower"), ("insertion_auc", "higher"), ("road", "higher")):
        cmp = vs.get(key)
        if cmp:
            verdict = {True: "beats random", False: "does NOT beat random", None: "too few items"}[
                cmp["beats"]
            ]
            lines.append(
                f"  {key} on {faith.get('score', 'logit')}s {cmp['method']:.3f} vs random {cmp['random']:.3f} "
                f"({better} is better; {verdict}, n={cmp['n']})"
            )
    anatomy = entry.get("anatomy")
    if anatomy and anatomy.get("border_energy") is not None:
        lines.append(
            f"  border energy {anatomy['border_energy']:.3f} within {anatomy['border_px']} px "
            f"(a uniform map: {anatomy['border_area_share']:.3f}; {anatomy.get('n_empty', 0)} of "
            f"{anatomy['n']} maps empty)"
        )
    if entry.get("sanity"):
        lines.append(f"  sanity check {entry['sanity']['verdict']}")
    lines += [f"  warning: {w}" for w in entry.get("warnings") or []]
    return lines


def headline(metrics: dict) -> tuple[float, float]:
    """Test ROC-AUC and accuracy (at the threshold chosen on val) from an evaluate_run result."""
    macro = metrics["metrics"]["macro"]
    return float(macro["roc_auc"]["value"]), float(macro["accuracy"]["value"])

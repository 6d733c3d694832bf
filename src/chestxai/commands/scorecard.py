"""``chestxai scorecard RUN``: a run's explanations judged by the field's published protocols."""

from __future__ import annotations

import argparse

from chestxai.commands._common import add_common_flags, add_n_boot
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.scorecard.settings import DEFAULT_METHODS, ScorecardSettings

EPILOG = f"""\
examples:
  chestxai scorecard runs/nih --seeds runs/nih-s1 runs/nih-s2 --architectures runs/nih-d121
  chestxai scorecard runs/quickstart              (no ground truth: randomisation and repeatability only)
  chestxai scorecard runs/rsna --boxes stage_2_train_labels.csv --methods hirescam layercam --layers layer2

Per method x layer (default methods: {" ".join(DEFAULT_METHODS)}; default layers: the model's stages),
each figure beside the seeded random map's through the same pipeline:
  localisation   CheXlocalize hit rate and mIoU (Otsu; thresholds and probability cutoffs tuned on
                 --val-split), Arun et al.'s AUPRC, ChestX-ray8 IoBB accuracy, relevance mass and rank,
                 with patient-bootstrap CIs (needs boxes or masks: the cache's, or --boxes/--masks)
  randomisation  cascading and independent weight randomisation, against Arun et al.'s baseline
                 (mean SSIM of 50 random pairs of maps of different images)
  repeatability  --seeds: maps of the same images from the same recipe retrained, against that baseline
  reproducibility  --architectures: the same from other models trained on the same data
and a verdict per (method, layer) with the pipeline to trust. Writes DIR/scorecard.json (layout:
docs/SCORECARD.md) and DIR/report.html; `chestxai report RUN` shows RUN/scorecard/ too.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scorecard",
        help="trust scorecard of a run's explanations by CheXlocalize, ChestX-ray8 and Arun et al.'s protocols",
        description="Score every explanation method x layer of a run by the field's published protocols, "
        "each beside the random-map control, and say which pipeline (model + method + layer) to trust.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run directory (holds checkpoint.pt)")
    p.add_argument("--seeds", nargs="+", metavar="RUN", help="runs of the same recipe with other seeds")
    p.add_argument("--architectures", nargs="+", metavar="RUN", help="runs of other models on the same data")
    p.add_argument("--methods", nargs="+", help=f"explanation methods (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument(
        "--layers", nargs="+", help="target layers, e.g. layer2 layer4 (default: the model's stages)"
    )
    p.add_argument(
        "--force", action=argparse.BooleanOptionalAction, default=False,
        help="replace a scorecard.json/report.html this command did not write",
    )  # fmt: skip
    # one flag per ScorecardSettings field declared with a flag: help, range and type from the field
    add_setting_flags(p, ScorecardSettings)
    add_n_boot(p, "bootstrap replicates of every CI")
    add_common_flags(p, device=False)  # --device and --seed are ScorecardSettings fields above
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.report.scorecard import build_scorecard_report
    from chestxai.rundir.guard import refuse_while_training
    from chestxai.scorecard.run import build_scorecard, output_dir

    for r in [args.run, *(args.seeds or []), *(args.architectures or [])]:
        refuse_while_training(r, "score its explanations")
    settings = ScorecardSettings(
        **setting_values(args, ScorecardSettings), run=args.run, seeds=tuple(args.seeds or ()),
        architectures=tuple(args.architectures or ()), methods=tuple(args.methods or ()),
        layers=tuple(args.layers or ()), n_boot=args.n_boot, progress=not args.no_progress,
    )  # fmt: skip
    card = build_scorecard(settings, force=args.force)
    print(summary(card))
    out = output_dir(settings)
    report = build_scorecard_report(out.root, force=args.force)
    print(f"written: {out.json}, {report}")
    return 0


def _v(ci: dict | None) -> str:
    return "n/a" if not ci or ci.get("value") is None else f"{ci['value']:.3f}"


def summary(card: dict) -> str:
    """A few lines for the terminal: per (method, layer) the headline figures, the words, the pick."""
    from chestxai.report.scorecard import warnings

    lines = []
    items = card["items"]
    if card["ground_truth"] is None:
        lines.append(f"{items['n_items']} items, no ground truth: randomisation and repeatability only")
    else:
        lines.append(
            f"{items['n_positive']} positives and {items['n_negative']} known negatives ({card['ground_truth']}); "
            f"value (random control)"
        )
    for method, by_layer in card["methods"].items():
        for layer, e in by_layer.items():
            if "not_applicable" in e:
                lines.append(f"  {method:10s} {layer:8s} not applicable: {e['not_applicable']}")
                continue
            loc = e.get("localization") or {}
            ctrl = loc.get("control") or {}
            figs = "  ".join(
                f"{k} {_v(loc.get(k))} ({_v(ctrl.get(k))})" for k in ("hit_rate", "miou_otsu", "auprc")
            ) if loc else "localisation not measured"  # fmt: skip
            rnd = e["randomization"].get("pass")
            trusted = "trusted" if e["verdict"].get("trusted") else "not trusted"
            lines.append(f"  {method:10s} {layer:8s} {figs}  randomisation {_word(rnd)}  {trusted}")
    lines += [f"note: {w}" for w in warnings(card)]
    if card.get("chestxray8"):
        lines += ["", card["chestxray8"]["table"]]
    rec = card.get("recommended") or {}
    if rec.get("line"):
        lines.append(rec["line"])
    lines.append(f"({card['together']})")
    return "\n".join(lines)


def _word(flag) -> str:
    return {True: "pass", False: "FAIL"}.get(flag, "n/a")

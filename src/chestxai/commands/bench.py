"""``chestxai bench lesions``: the localization benchmark with known ground truth (and shortcuts)."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.bench.settings import BenchConfig
from chestxai.commands._common import add_common_flags
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.commands._options import HELP, reader_options

EPILOG = """\
examples:
  chestxai bench lesions --source nih --root ../shared/data/nih-bbox --size 128 --out bench/nih
  chestxai bench lesions --source medmnist --root ../shared/data/pneumoniamnist --size 64 --out bench/pm
  chestxai bench lesions --source folder --root ./xrays --size 128 --out bench/mine --difficulty medium
  chestxai bench lesions --source nih --root ../shared/data/nih-bbox --out bench/tag --shortcut tag
  chestxai bench lesions --source nih --root ../shared/data/nih-bbox --size 64 --scorecard --out bench/card

A lesion-like opacity (soft-edged, textured; radius, contrast and position inside an approximate
lung field drawn per image) is inserted into half of several jittered copies of each real image;
its mask is the ground truth. A ResNet is trained from scratch on the task, then every method is
run at every layer with the random control: DIR/bench.json and DIR/report.html. --shortcut puts a
spurious cue (an "R" marker tag or a border band) into the lesion class only and measures the AUC
drop without it and the heatmap energy on the cue vs on the lesion. --scorecard then trains
more seeds of the model and one other architecture on the same task and writes the trust
scorecard of the run (localisation by the CheXlocalize protocol, Arun et al.'s randomisation,
repeatability and reproducibility) to DIR/scorecard/.
"""


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (e.g. 0.09,0.125), got {text!r}") from None
    return lo, hi


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks with known ground truth (lesion localization, shortcuts)")
    kinds = p.add_subparsers(dest="bench", metavar="<benchmark>")
    q = kinds.add_parser(
        "lesions",
        help="semi-synthetic lesions on real X-rays: train, explain at several layers, rank vs random",
        description="Build a lesion task from any real images a reader can load, train a ResNet on it, "
        "explain the test lesions with every method at several target layers and measure the pointing "
        "game, IoBB and energy in the lesion mask beside the random control.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=HELP)
    q.add_argument(
        "--variants", type=int, default=8, help="jittered copies per image, half with a lesion (8)"
    )
    q.add_argument("--difficulty", choices=("easy", "medium", "hard"), default="easy",
                   help="lesion preset (easy: radius 9-12.5%% of the side, contrast 0.45-0.7)")  # fmt: skip
    q.add_argument("--radius", type=_pair, metavar="LO,HI", help="lesion radius range, fraction of the side")
    q.add_argument("--contrast", type=_pair, metavar="LO,HI", help="lesion contrast range in (0, 1]")
    q.add_argument("--shortcut", choices=("none", "tag", "band"), default="none",
                   help="spurious cue in the lesion class only: tag (an 'R' marker) or band (border)")  # fmt: skip
    q.add_argument("--methods", nargs="+", help="explanation methods (default: the batched CAM family)")
    q.add_argument("--layers", nargs="+", help="target layers (default layer2 layer3 layer4 for ResNets)")
    q.add_argument(
        "--force", action=argparse.BooleanOptionalAction, default=False, help="write into a non-empty --out"
    )
    # one flag per BenchConfig field declared with a flag: help, range and type from the field
    add_setting_flags(q, BenchConfig)
    add_common_flags(q, device=False)  # --device and --seed are BenchConfig fields above
    q.set_defaults(func=run)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chestxai.bench.lesions import DIFFICULTY
    from chestxai.bench.run import DEFAULT_METHODS, run_bench
    from chestxai.bench.task import TaskSpec
    from chestxai.report.bench import build_bench_report

    lesion = DIFFICULTY[args.difficulty]
    changes: dict[str, Any] = {k: v for k, v in (("radius", args.radius), ("contrast", args.contrast)) if v}
    lesion = replace(lesion, **changes) if changes else lesion
    cfg = BenchConfig(
        **setting_values(args, BenchConfig), options=reader_options(args.source, args.option),
        methods=tuple(args.methods or DEFAULT_METHODS), layers=tuple(args.layers or ()), force=args.force,
        progress=not args.no_progress,
    )  # fmt: skip
    spec = TaskSpec(size=cfg.size, variants=args.variants, lesion=lesion, seed=cfg.seed,
                    shortcut="" if args.shortcut == "none" else args.shortcut)  # fmt: skip
    cfg = replace(cfg, task=spec)  # checked again with the task
    out = run_bench(cfg)
    report = build_bench_report(args.out)
    print(summary(out))
    print(f"report: {report}")
    if out.get("scorecard"):  # its report.html is written here: the report layer sits above bench
        from chestxai.commands.scorecard import summary as scorecard_summary
        from chestxai.report.scorecard import build_scorecard_report
        from chestxai.rundir.jsonfile import read_json

        where = out["scorecard"]["dir"]
        print(scorecard_summary(read_json(out["scorecard"]["json"])))
        print(f"scorecard: {build_scorecard_report(where, force=cfg.force)}")
    return 0


def _alignment(r: dict, f) -> str:
    """The shift the heatmaps were moved by and the pointing game without it (the headline depends on it)."""
    shift = r.get("alignment_shift_px")
    if shift is None:
        return ""
    return f"(aligned by {tuple(shift)} px; pointing {f(r.get('pointing_game_unaligned'))} unaligned)"


def summary(out: dict) -> str:
    """A few lines for the terminal: AUCs, the best (method, layer), the random control."""
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"val AUC {f(out['val_auc'])}  test AUC {f(out['test_auc'])}  "
             f"({out['n_explained']} test lesions, tolerance {out['pointing_tolerance_px']:g} px)"]  # fmt: skip
    for m, r in sorted(out["methods"].items(), key=lambda kv: -(kv[1]["pointing_game"] or 0)):
        lines.append(f"  {m:10s} best layer {r['layer']:8s} pointing {f(r['pointing_game'])}  "
                     f"IoBB {f(r['iobb'])}  energy {f(r['energy'])}  {_alignment(r, f)}")  # fmt: skip
    if out.get("random"):
        r = out["random"]
        lines.append(f"  {'random':10s} best layer {r['layer']:8s} pointing {f(r['pointing_game'])}  "
                     f"IoBB {f(r['iobb'])}  energy {f(r['energy'])}")  # fmt: skip
    if out.get("shortcut"):
        s = out["shortcut"]
        lines.append(f"shortcut {s['cue']}: test AUC {f(s['test_auc_with_cue'])} with the cue, "
                     f"{f(s['test_auc_without_cue'])} without (drop {f(s['auc_drop'])})")  # fmt: skip
    if out.get("scorecard"):
        lines.extend(_scorecard_lines(out["scorecard"], f))
    return "\n".join(lines)


def _scorecard_lines(card: dict, f) -> list[str]:
    """``--scorecard``: where it is, the runs it compared, its recommended pipeline, the best hit rate per layer."""
    from chestxai.bench.scorecard import recommended_line

    runs = ", ".join(f"{r['model']} seed {r['seed']}" for r in card.get("runs", []))
    hits = "  ".join(f"{layer} {f(b['hit_rate'])} ({b['method']})"
                     for layer, b in sorted(card.get("best_hit_rate_by_layer", {}).items()))  # fmt: skip
    return [
        f"scorecard: {card['dir']} (compared with {runs or 'no other runs'})",
        f"  best hit rate per layer: {hits or 'n/a (no ground truth)'}",
        f"  {recommended_line(card.get('recommended'))}",
    ]

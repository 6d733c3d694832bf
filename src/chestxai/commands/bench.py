"""``chestxai bench lesions``: the localization benchmark with known ground truth (and shortcuts)."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import add_common_flags
from chestxai.commands._options import HELP, reader_options

EPILOG = """\
examples:
  chestxai bench lesions --source nih --root ../shared/data/nih-bbox --size 128 --out bench/nih
  chestxai bench lesions --source medmnist --root ../shared/data/pneumoniamnist --size 64 --out bench/pm
  chestxai bench lesions --source folder --root ./xrays --size 128 --out bench/mine --difficulty medium
  chestxai bench lesions --source nih --root ../shared/data/nih-bbox --out bench/tag --shortcut tag

A lesion-like opacity (soft-edged, textured; radius, contrast and position inside an approximate
lung field drawn per image) is inserted into half of several jittered copies of each real image;
its mask is the ground truth. A ResNet is trained from scratch on the task, then every method is
run at every layer with the random control: DIR/bench.json and DIR/report.html. --shortcut puts a
spurious cue (an "R" marker tag or a border band) into the lesion class only and measures the AUC
drop without it and the heatmap energy on the cue vs on the lesion.
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
    q.add_argument("--source", required=True, help="reader name (nih, folder, medmnist, csv, ...)")
    q.add_argument("--root", required=True, help="folder (or file) holding the images")
    q.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=HELP)
    q.add_argument("--size", type=int, default=128, help="image side in px (default 128; at least 32)")
    q.add_argument("--out", required=True, help="output folder DIR (new or empty; --force to reuse)")
    q.add_argument(
        "--backgrounds", type=int, default=600, help="real images used (seeded subset; default 600)"
    )
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
        "--model", default="resnet18", help="architecture, trained from scratch (default resnet18)"
    )
    q.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    q.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the training loop's augmentation (default off: the lesions already vary per variant, and "
        "the augmentation's black fill taught border cues)",
    )
    q.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="mixed-precision training (bfloat16 on CPU, float16 on CUDA; default off: on an AMX CPU it "
        "trains 1.7x faster, but the NIH 128 px model localized worse, see docs/BENCHMARKS.md)",
    )
    q.add_argument("--batch-size", type=int, default=16, help="training batch size (default 16)")
    q.add_argument("--lr", type=float, default=3e-3, help="learning rate (AdamW, cosine; default 3e-3)")
    q.add_argument(
        "--tolerance", type=float, help="pointing-game tolerance in px (default size/32: 4 at 128)"
    )
    q.add_argument(
        "--explain-limit",
        dest="explain",
        type=int,
        default=200,
        metavar="N",
        help="test lesions explained (default 200)",
    )
    q.add_argument("--faithfulness-limit", dest="faithfulness", type=int, default=16, metavar="N",
                   help="items with deletion/insertion/ROAD at each method's best layer (default 16; 0 = off)")  # fmt: skip
    q.add_argument("--sanity-limit", dest="sanity", type=int, default=8, metavar="N",
                   help="images for the weight-randomisation check at the best layer (default 8; 0 = off)")  # fmt: skip
    q.add_argument("--label-sanity-limit", dest="label_sanity", type=int, default=0, metavar="N",
                   help="label randomisation check: train a second model on permuted labels and compare "
                   "each method's maps on N test lesions (costs a second training; default 0 = off)")  # fmt: skip
    q.add_argument(
        "--cache", default="", help="where the backgrounds' prepared cache goes (default the user cache)"
    )
    q.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    q.add_argument(
        "--force", action=argparse.BooleanOptionalAction, default=False, help="write into a non-empty --out"
    )
    add_common_flags(q, seed=True)
    q.set_defaults(func=run)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chestxai.bench.lesions import DIFFICULTY
    from chestxai.bench.run import DEFAULT_METHODS, BenchConfig, run_bench
    from chestxai.bench.task import TaskSpec
    from chestxai.report.bench import build_bench_report

    lesion = DIFFICULTY[args.difficulty]
    changes: dict[str, Any] = {k: v for k, v in (("radius", args.radius), ("contrast", args.contrast)) if v}
    lesion = replace(lesion, **changes) if changes else lesion
    spec = TaskSpec(size=args.size, variants=args.variants, lesion=lesion, seed=args.seed,
                    shortcut="" if args.shortcut == "none" else args.shortcut)  # fmt: skip
    cfg = BenchConfig(
        source=args.source, root=args.root, out=args.out, size=args.size,
        options=reader_options(args.source, args.option), backgrounds=args.backgrounds, task=spec,
        methods=tuple(args.methods or DEFAULT_METHODS), layers=tuple(args.layers or ()), model=args.model,
        epochs=args.epochs, augment=args.augment, amp=args.amp, batch_size=args.batch_size, lr=args.lr, tolerance=args.tolerance, explain_limit=args.explain,
        faithfulness=args.faithfulness, sanity=args.sanity, label_sanity=args.label_sanity, cache=args.cache, device=args.device,
        threads=args.threads, seed=args.seed, force=args.force, progress=not args.no_progress,
    )  # fmt: skip
    out = run_bench(cfg)
    report = build_bench_report(args.out)
    print(summary(out))
    print(f"report: {report}")
    return 0


def summary(out: dict) -> str:
    """A few lines for the terminal: AUCs, the best (method, layer), the random control."""
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"val AUC {f(out['val_auc'])}  test AUC {f(out['test_auc'])}  "
             f"({out['n_explained']} test lesions, tolerance {out['pointing_tolerance_px']:g} px)"]  # fmt: skip
    for m, r in sorted(out["methods"].items(), key=lambda kv: -(kv[1]["pointing_game"] or 0)):
        lines.append(f"  {m:10s} best layer {r['layer']:8s} pointing {f(r['pointing_game'])}  "
                     f"IoBB {f(r['iobb'])}  energy {f(r['energy'])}")  # fmt: skip
    if out.get("random"):
        r = out["random"]
        lines.append(f"  {'random':10s} best layer {r['layer']:8s} pointing {f(r['pointing_game'])}  "
                     f"IoBB {f(r['iobb'])}  energy {f(r['energy'])}")  # fmt: skip
    if out.get("shortcut"):
        s = out["shortcut"]
        lines.append(f"shortcut {s['cue']}: test AUC {f(s['test_auc_with_cue'])} with the cue, "
                     f"{f(s['test_auc_without_cue'])} without (drop {f(s['auc_drop'])})")  # fmt: skip
    return "\n".join(lines)

"""``chestxai explain RUN``: heatmaps, boxes and measured localization/faithfulness for a run."""

from __future__ import annotations

import argparse

from chestxai.commands._common import add_common_flags


def _threshold(text: str) -> float | str:
    if text.lower() == "otsu":
        return "otsu"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"threshold must be a fraction like 0.5 or 'otsu', got {text!r}"
        ) from None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain a run's decisions: CAM heatmaps, boxes, localization and faithfulness",
        description="Explain a trained run with a CAM method: overlays (RUN/cams/), heatmaps, boxes from "
        "heatmaps, and RUN/explain_metrics.json with pointing game, IoU, IoBB and energy against ground-truth "
        "boxes/masks (the random-map control beside every figure) and deletion/insertion/ROAD faithfulness. "
        "--compare-methods ranks every method on the same images (RUN/explain_compare.md/.csv).",
    )
    p.add_argument("run_dir", metavar="RUN", help="run directory (holds checkpoint.pt)")
    p.add_argument(
        "--method", default="gradcam", help="explanation method (default gradcam; see --list-methods)"
    )
    p.add_argument("--list-methods", action="store_true", help="print the available methods and exit")
    p.add_argument(
        "--compare-methods", action="store_true", help="run every method (or --methods) and rank them"
    )
    p.add_argument("--methods", nargs="+", help="with --compare-methods: only these methods")
    p.add_argument(
        "--finding",
        help="explain this finding on every image (default: the boxed findings, else the top output)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--split",
        default="test",
        help="images of this split of the run (default test; 'all' for every image). Another split's "
        "outputs go to RUN/cams/METHOD@SPLIT/ and their own explain_metrics.json entry",
    )
    src.add_argument(
        "--images", nargs="+", metavar="FILE", help="explain these image files instead (PNG/JPEG/DICOM)"
    )
    gt = p.add_mutually_exclusive_group()
    gt.add_argument(
        "--boxes",
        help="ground-truth boxes: NIH BBox_List_2017.csv or RSNA stage_2_train_labels.csv as distributed, "
        "or image_id,label,x,y,w,h (fractions or pixels of the image); default: the cache's",
    )
    gt.add_argument(
        "--masks", help="ground-truth masks table: image_id,label,kind (rle|png),ref,height,width"
    )
    p.add_argument("--layer", help="target layer as a dotted module name (default: chosen per architecture)")
    p.add_argument("--limit", type=int, help="explain at most this many images")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--threshold", type=_threshold, default=0.5, help="box threshold: fraction of the maximum, or 'otsu'"
    )
    p.add_argument("--max-boxes", type=int, default=3, help="boxes per heatmap (largest heatmap mass first)")
    p.add_argument("--tolerance", type=float, default=0.0, help="pointing-game tolerance in pixels")
    p.add_argument("--colormap", default="jet")
    p.add_argument("--opacity", type=float, default=0.5, help="heatmap opacity in overlays (0-1)")
    p.add_argument("--no-overlays", action="store_true", help="do not write overlay PNGs")
    p.add_argument(
        "--faithfulness-limit",
        type=int,
        default=16,
        help="items that get deletion/insertion and ROAD (0 = none)",
    )
    add_common_flags(
        p, seed=True, device_default="cpu", seed_help="seed of the random control and ROAD's imputation noise"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.explain.methods import METHODS, list_methods

    if args.list_methods:
        for name in list_methods():
            print(f"{name:12s} {METHODS.get(name).summary}")
        return 0
    from chestxai.explain.run import compare_methods, explain_run
    from chestxai.explain.settings import ExplainSettings

    settings = ExplainSettings(
        batch_size=args.batch_size,
        threshold=args.threshold,
        max_boxes=args.max_boxes,
        tolerance=args.tolerance,
        colormap=args.colormap,
        opacity=args.opacity,
        overlays=not args.no_overlays,
        faithfulness_limit=args.faithfulness_limit,
        seed=args.seed,
    )
    common = dict(
        finding=args.finding,
        split=args.split,
        images=args.images,
        boxes=args.boxes,
        masks=args.masks,
        limit=args.limit,
        settings=settings,
        device=args.device,
        progress=not args.no_progress,
    )
    if args.compare_methods:
        table = compare_methods(args.run_dir, methods=args.methods, **common)
        print(table.drop(columns=["layer"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(
            f"\nwritten: {args.run_dir}/explain_compare.md, explain_compare.csv, explain_metrics.json, cams/"
        )
        return 0
    result = explain_run(args.run_dir, method=args.method, layer=args.layer, **common)
    loc = result.metrics.get("localization")
    ctrl = (result.metrics.get("control") or {}).get("localization")
    print(f"{result.method} at {result.layer}: {len(result.scores)} items")
    if loc:
        o, c = loc["overall"], (ctrl or {}).get("overall") or {}
        print(
            f"pointing game {_fmt(o['pointing_game'])} (random {_fmt(c.get('pointing_game'))}), "
            f"IoBB {_fmt(o['iobb'])} (random {_fmt(c.get('iobb'))}), "
            f"energy {_fmt(o['energy'])} (random {_fmt(c.get('energy'))}) on {o['n']} items with ground truth"
        )
    faith = result.metrics.get("faithfulness")
    if faith:
        print(
            f"deletion AUC {_fmt(faith.get('deletion_auc'))}, insertion AUC {_fmt(faith.get('insertion_auc'))}, "
            f"ROAD {_fmt(faith.get('road'))} on {faith['n']} items"
        )
    for s in result.skipped:
        print(f"skipped {s['item']}: {s['reason']}")
    print(f"written: {args.run_dir}/cams/, {args.run_dir}/explain_metrics.json")
    return 0

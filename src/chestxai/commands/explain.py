"""``chestxai explain RUN``: heatmaps, boxes and measured localization/faithfulness for a run."""

from __future__ import annotations

import argparse

from chestxai.commands._common import add_common_flags
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.errors import UserError
from chestxai.explain.settings import ExplainSettings


def _layer_list(texts: list[str] | None) -> list[str] | None:
    """``--layers a b`` or ``--layers a,b`` -> ``["a", "b"]`` (the comma form is the older spelling)."""
    if texts is None:
        return None
    names = [name.strip() for text in texts for name in text.split(",") if name.strip()]
    if not names:
        raise UserError(f"--layers needs layer names, got {texts!r}")
    return names


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain a run's decisions: CAM heatmaps, boxes, localization and faithfulness",
        description="Explain a trained run with a CAM method: overlays (RUN/cams/), heatmaps, boxes from "
        "heatmaps, and RUN/explain_metrics.json with pointing game, IoU, IoBB and energy against ground-truth "
        "boxes/masks (the random-map control beside every figure) and deletion/insertion/ROAD faithfulness. "
        "--compare-methods ranks every method on the same images (RUN/explain_compare.md/.csv); --compare-layers "
        "ranks target layers of one method (RUN/explain_layers.md/.csv); --sanity adds the model-randomisation "
        "sanity check (Adebayo et al. 2018). Every method also gets its border (and, with lung masks, "
        "outside-lung) energy and a warnings list in explain_metrics.json.",
    )
    p.add_argument("run_dir", metavar="RUN", help="run directory (holds checkpoint.pt)")
    p.add_argument(
        "--method", default="gradcam", help="explanation method (default gradcam; see --list-methods)"
    )
    p.add_argument(
        "--list-methods",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="print the available methods and exit",
    )
    p.add_argument(
        "--compare-methods",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run every method (or --methods) and rank them",
    )
    p.add_argument("--methods", nargs="+", help="with --compare-methods: only these methods")
    p.add_argument(
        "--compare-layers",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run --method at several target layers (default: the last stage at each resolution) and rank them",
    )
    p.add_argument(
        "--layers",
        nargs="+",
        help="with --compare-layers: dotted layer names, e.g. layer1 layer2 layer3 (or layer1,layer2,layer3)",
    )
    p.add_argument(
        "--sanity",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="model-randomisation sanity check: re-initialise the weights (cascading from the head down, "
        "and one block at a time) and compare the maps with the trained model's (Spearman, SSIM)",
    )
    p.add_argument(
        "--finding",
        help="explain this finding on every image (default: the boxed findings, else the top positive finding)",
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
    # one flag per ExplainSettings field declared with a flag: help, range and type from the field
    add_setting_flags(p, ExplainSettings)
    add_common_flags(p)  # --seed is ExplainSettings.seed above; --device auto like every command
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.explain.methods import METHODS, list_methods

    if args.list_methods:
        for name in list_methods():
            print(f"{name:12s} {METHODS.get(name).summary}")
        return 0
    from chestxai.rundir.guard import refuse_while_training

    refuse_while_training(args.run_dir, "explain it")
    from chestxai.explain.layer_compare import compare_layers
    from chestxai.explain.run import compare_methods, explain_run

    if args.compare_methods and args.compare_layers:
        raise UserError("--compare-methods and --compare-layers rank different things; pass one of them")
    if args.layers and not args.compare_layers:
        raise UserError("--layers goes with --compare-layers; to explain at one layer pass --layer NAME")
    if args.methods and not args.compare_methods:
        raise UserError("--methods goes with --compare-methods; to explain one method pass --method NAME")
    settings = ExplainSettings(**setting_values(args, ExplainSettings))
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
        sanity=args.sanity,
    )
    if args.compare_layers:
        table = compare_layers(args.run_dir, method=args.method, layers=_layer_list(args.layers), **common)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        best = table[table["recommended"]]
        print(
            f"\nrecommended layer: {best.iloc[0]['layer']}"
            if len(best)
            else "\nno layer recommended (no ground truth, or none beats the random control)"
        )
        print(f"written: {args.run_dir}/explain_layers.md, explain_layers.csv, explain_metrics.json")
        return 0
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
        cf = (result.metrics.get("control") or {}).get("faithfulness") or {}
        print(
            f"on {faith.get('score', 'logit')}s: deletion AUC {_fmt(faith.get('deletion_auc'))} "
            f"(random {_fmt(cf.get('deletion_auc'))}), insertion AUC {_fmt(faith.get('insertion_auc'))} "
            f"(random {_fmt(cf.get('insertion_auc'))}), ROAD {_fmt(faith.get('road'))} "
            f"(random {_fmt(cf.get('road'))}) on {faith['n']} items"
        )
    anatomy = result.metrics.get("anatomy")
    if anatomy:
        print(
            f"border energy {_fmt(anatomy['border_energy'])} within {anatomy['border_px']} px "
            f"(uniform map {_fmt(anatomy['border_area_share'])})"
        )
    sanity = result.metrics.get("sanity")
    if sanity:
        print(f"sanity check {sanity['verdict']}")
    for w in result.metrics.get("warnings") or []:
        print(f"warning: {w}")
    for s in result.skipped:
        print(f"skipped {s['item']}: {s['reason']}")
    print(f"written: {args.run_dir}/cams/, {args.run_dir}/explain_metrics.json")
    return 0

"""``chestxai predict``: probabilities and decisions for any folder, file list or CSV of images."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import RegistryChoices, add_common_flags
from chestxai.commands._sharded import add_dist_timeout, run_sharded

EPILOG = """\
examples:
  chestxai predict runs/quickstart --folder new_xrays/ --out preds.csv
  chestxai predict runs/nih-d121 --images a.png b.dcm --out preds.csv --explain gradcam --label Mass
  chestxai predict runs/nih-d121 --csv manifest.csv --csv-column path --out preds.csv --uncertainty mc-dropout
  chestxai predict runs/quickstart --images x.dcm --out preds.csv --dicom-out dicom_results/
  chestxai predict --onnx runs/quickstart/export/model.onnx --folder new_xrays/ --out preds.csv
  torchrun --standalone --nproc_per_node 4 -m chestxai predict runs/nih-d121 --folder /data/big --out preds.csv

Files are decoded and resized exactly as `prepare` does for training, then preprocessed as the
checkpoint says. OUT.csv: one row per good image (path, p_LABEL, decision_LABEL at the run's
operating thresholds; mean_/std_LABEL with --uncertainty). With --explain: each image's top
positive finding is explained (--label to choose; explained_positive says if it is negative), the
overlay PNG at the original's size (longer side shrunk to 2048 px for the picture only) and the raw
model-grid heatmap (.npy) in OUT-METHOD/, boxes x,y,w,h in the original's pixels (box_space column;
--box-space model for the network's square grid). Bad files are listed on screen and in
OUT.skipped.csv with the reason, and so is every entry of --folder that is not predicted (FIFOs and
devices, never opened; dangling links, link loops, unreadable folders).
--dicom-out DIR: per DICOM input a Comprehensive 3D SR (TID 1500: findings, probabilities,
thresholds, boxes, the algorithm) and the heatmap as a float32 Parametric Map, in the source's study
(docs/DICOM.md); DICOM inputs that cannot get them are skipped with the reason.
--onnx runs with onnxruntime only (no torch needed); heatmaps and MC dropout need the run.
Under torchrun each rank takes a shard of the files (its own GPU with --device auto) and rank 0
writes the merged OUT.csv, the same rows in the same order as one process; a rank that dies or does
not arrive within --dist-timeout seconds fails the job with a message instead of hanging it.
"""


def _single_model_methods() -> list[str]:
    from chestxai.uncertainty.methods import single_model_methods

    return single_model_methods()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict",
        help="score any folder / files / CSV of images with a run (or an exported ONNX model)",
        description="Predict RUN (or --onnx MODEL.onnx) on images; one output row per good image.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", nargs="?", default=None, help="run directory holding checkpoint.pt")
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx", help="an exported model instead of RUN")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", nargs="+", metavar="PATH", help="image files (PNG, JPEG, DICOM)")
    src.add_argument("--folder", metavar="DIR", help="every non-hidden file below DIR")
    src.add_argument("--csv", metavar="FILE", help="a CSV with a column of image paths (relative to the CSV)")
    p.add_argument("--csv-column", default=None, help="the CSV's path column (default: path/image/file...)")
    p.add_argument("--out", required=True, metavar="OUT.csv", help="predictions CSV to write")
    p.add_argument("--explain", default=None, metavar="METHOD", help="also write heatmap overlays + boxes")
    p.add_argument(
        "--label", default=None, help="label to explain (default: each image's top positive finding)"
    )
    p.add_argument(
        "--box-space",
        default="original",
        choices=["original", "model"],
        help="boxes in the original image's pixels (default) or on the model's square input grid",
    )
    p.add_argument(
        "--uncertainty",
        default=None,
        choices=RegistryChoices(_single_model_methods),
        metavar="METHOD",
        help="mean/std over MC-dropout passes or test-time augmentations (%(choices)s)",
    )
    p.add_argument(
        "--dicom-out",
        default=None,
        metavar="DIR",
        help="also write a DICOM SR (TID 1500) + Parametric Map per DICOM input into DIR (implies --explain "
        "gradcam unless --explain names another method)",
    )
    p.add_argument(
        "--force-modality",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="with --dicom-out: write results for DICOM inputs whose modality is not CR/DX too",
    )
    p.add_argument(
        "--presentation-state",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="with --dicom-out: also a grayscale presentation state drawing the boxes on the source",
    )
    p.add_argument("--passes", type=int, default=30, help="MC-dropout passes / TTA views (default 30)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward (default 64)")
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="replace an OUT.csv this command did not write",
    )
    add_common_flags(p, seed=True, seed_help="MC-dropout / TTA seed")
    add_dist_timeout(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chestxai.rundir.guard import refuse_while_training
    from chestxai.serve.inputs import list_inputs
    from chestxai.serve.predict_files import PredictOptions

    if (args.run is None) == (args.onnx is None):
        raise ValueError("give either RUN (a run directory) or --onnx MODEL.onnx, not both or neither")
    if args.run is not None:
        refuse_while_training(args.run, "predict with it")
    if args.dicom_out is None and (args.force_modality or args.presentation_state):
        raise ValueError("--force-modality and --presentation-state only apply with --dicom-out DIR")
    if args.passes < 2:
        raise ValueError(f"--passes must be >= 2 to estimate a spread, got {args.passes}")
    unlisted: list[dict] = []  # folder entries not walked: listed as skipped, never dropped
    paths = list_inputs(args.images, args.folder, args.csv, args.csv_column, skipped=unlisted)
    options = PredictOptions(
        batch_size=args.batch_size,
        explain=args.explain,
        label=args.label,
        box_space=args.box_space,
        uncertainty=args.uncertainty,
        passes=args.passes,
        seed=args.seed,
        force=args.force,
        progress=not args.no_progress,
        dicom_out=None if args.dicom_out is None else Path(args.dicom_out),
        dicom_force_modality=args.force_modality,
        dicom_presentation_state=args.presentation_state,
    )
    return run_sharded(
        args, "predict", lambda info, device: _run(args, paths, options, info, device, unlisted)
    )


def _run(args: argparse.Namespace, paths: list, options, info, device: str, unlisted: list) -> int:
    from pathlib import Path

    from chestxai.serve.predict_files import predict_files

    if args.onnx is not None:
        from chestxai.export.runtime import OnnxModel

        scorer = OnnxModel(args.onnx)
    else:
        from chestxai.serve.models import load_served

        scorer = load_served(args.run, device=device)  # TrainedRun resolves auto
    if info is not None:
        from chestxai.train.distributed import wait_for_all

        timeout = args.dist_timeout
        options.rank, options.world_size = info.rank, info.world_size
        options.progress = options.progress and info.is_main
        options.barrier = lambda: wait_for_all(info, timeout, "predict")
    result = predict_files(scorer, paths, Path(args.out), options, unlisted)
    if options.rank != 0:
        return 0
    lines = [f"predicted {result['n_images']} image(s) with {scorer.description} -> {result['out']}"]
    if result["n_skipped"]:
        lines.append(f"skipped {result['n_skipped']} file(s) (listed in {result['skipped_csv']}):")
        lines += [f"  {s['path']}: {s['reason']}" for s in result["skipped"][:20]]
        if result["n_skipped"] > 20:
            lines.append(f"  ... and {result['n_skipped'] - 20} more")
    if result["dicom"]:
        lines.append(
            f"wrote DICOM SR + Parametric Map for {len(result['dicom'])} DICOM image(s) -> {args.dicom_out}"
        )
    print("\n".join(lines))
    return 0

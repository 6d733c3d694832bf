"""``chestxai predict``: probabilities and decisions for any list of image files.

Batched: files are decoded a batch at a time (memory stays flat on a large folder) and each batch
is one forward. A file that fails to decode, is not a regular file (a FIFO, a device, a dangling
link: never opened) or was not walked (an unreadable folder, a link loop) is listed on screen and
in ``OUT.skipped.csv`` with its reason and never stops the run. Under ``torchrun --nproc_per_node N`` rank ``r`` takes the
``r``-th contiguous block of whole batches of the files, writes its rows to a part file beside ``OUT`` and rank 0 merges them back into
input order once every rank is done (the output equals a one-process run's, row for row). Ranks
must share the filesystem ``OUT`` lives on.

The scorer is either a :class:`~chestxai.serve.models.ServedModel` (PyTorch, from a run) or an
:class:`~chestxai.export.runtime.OnnxModel` (onnxruntime only); both expose ``label_names``,
``task``, ``resize_to``, ``forward(uint8 images)`` and ``decisions(probs)``. Explanations and MC
dropout need gradients or dropout at inference, so they exist on the PyTorch path only.

``--explain``: each image's top *positive* finding unless ``--label`` names one
(:mod:`chestxai.explain.choice`); the overlay PNG is written at the original image's size (an
original longer than ``OVERLAY_MAX_SIDE`` px is shrunk for the picture only), the raw model-grid
heatmap beside it as ``.npy``, and the boxes in the original's pixels unless ``--box-space model``
(:mod:`chestxai.explain.spaces`); the ``box_space`` column names the space of every row.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from chestxai.atomic import atomic_path
from chestxai.evaluation.sharded_inference import batch_block
from chestxai.rundir import prob_column, safe_name
from chestxai.rundir.guard import check_overwrite
from chestxai.serve.inputs import load_files

log = logging.getLogger(__name__)


def decision_column(label: str) -> str:
    return f"decision_{label}"


def mean_column(label: str) -> str:
    return f"mean_{label}"


def std_column(label: str) -> str:
    return f"std_{label}"


#: columns added when the run has a conformal calibration: sets, or (binary) the triage bin
CONFORMAL_COLUMNS = {False: ["conformal_set", "conformal_set_size"], True: ["triage"]}


def skipped_path(out: Path) -> Path:
    """``OUT.skipped.csv`` beside ``OUT.csv``."""
    return out.with_name(f"{out.stem}.skipped.csv")


def overlay_dir(out: Path, method: str) -> Path:
    return out.with_name(f"{out.stem}-{safe_name(method)}")


def item_stem(index: int, path: str | Path) -> str:
    """``000003_name``: the file stem of one input's overlay, heatmap and DICOM results."""
    return f"{index:06d}_{safe_name(Path(path).stem)}"


def _part(out: Path, rank: int, what: str) -> Path:
    return out.with_name(f".{out.stem}.{what}.rank{rank}.csv")


@dataclass
class PredictOptions:
    batch_size: int = 64
    explain: str | None = None
    label: str | None = None  # explained label (default: each image's top positive finding)
    box_space: str = "original"  # boxes in the original image's pixels, or "model" (the network's grid)
    uncertainty: str | None = None
    passes: int = 30
    seed: int = 0
    force: bool = False
    progress: bool = True
    rank: int = 0
    world_size: int = 1
    barrier: Any = field(default=None, repr=False)  # callable: wait for every rank (distributed)
    dicom_out: Path | None = None  # SR + Parametric Map per DICOM source (implies an explanation)
    dicom_force_modality: bool = False  # DICOM results for modalities other than CR/DX too
    dicom_presentation_state: bool = False  # also a presentation state with the boxes


def check_request(scorer: Any, out: Path, options: PredictOptions, onnx: bool) -> None:
    """Every flag problem, before any file is decoded."""
    if out.suffix.lower() != ".csv":
        raise ValueError(f"--out {out} must be a .csv file")
    if options.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {options.batch_size}")
    if onnx and (options.explain or options.uncertainty):
        raise ValueError(
            "--explain and --uncertainty need gradients or dropout at inference, which an ONNX model does "
            "not have; pass the run directory instead of --onnx"
        )
    if options.uncertainty:
        _check_uncertainty(scorer, options.uncertainty)
    if options.label is not None and options.label not in scorer.label_names:
        raise KeyError(f"--label {options.label!r} is not one of the run's labels {scorer.label_names}")
    if options.explain:
        from chestxai.explain import list_methods
        from chestxai.explain.spaces import check_space

        check_space(options.box_space)
        if options.explain not in list_methods():
            raise KeyError(f"--explain {options.explain!r}: choose one of {', '.join(list_methods())}")
    if options.dicom_out is not None:
        from chestxai.serve.dicom_results import check_dicom_out

        check_dicom_out(Path(options.dicom_out), options.force, onnx)
    if options.rank == 0:
        check_overwrite(out, options.force, what="predictions")
        check_overwrite(skipped_path(out), options.force, what="list of skipped files")
        if options.explain and overlay_dir(out, options.explain).exists() and not options.force:
            raise FileExistsError(
                f"{overlay_dir(out, options.explain)} exists; choose another --out or pass --force"
            )


def _check_uncertainty(scorer: Any, name: str) -> None:
    """``--uncertainty NAME``: a registered method that samples one model, and can sample this one."""
    from chestxai.uncertainty.methods import get_method, single_model_methods

    offered = single_model_methods()
    if name not in offered:
        raise ValueError(f"--uncertainty {name!r}: choose one of {offered}")
    reason = get_method(name).unavailable(scorer.model)
    if reason:
        others = [n for n in offered if get_method(n).available(scorer.model)]
        use = f"; use --uncertainty {' or '.join(others)}" if others else ""
        raise ValueError(f"--uncertainty {name}: {scorer.run.root} {reason}{use}")


def predict_files(
    scorer: Any, paths: list[Path], out: str | Path, options: PredictOptions, unlisted: Sequence[dict] = ()
) -> dict:
    """Score ``paths`` into ``out`` (CSV) and ``OUT.skipped.csv``; returns counts and paths written.

    ``unlisted``: ``{"path", "reason"}`` of entries the listing did not return (unreadable folders,
    link loops, FIFOs...: :func:`chestxai.serve.inputs.list_inputs`); they go into
    ``OUT.skipped.csv`` after the files' own rows."""
    out = Path(out)
    onnx = not hasattr(scorer, "explain")
    if options.dicom_out is not None and not options.explain and not onnx:  # the Parametric Map: a heatmap
        from chestxai.serve.dicom_results import DEFAULT_METHOD

        options = dataclasses.replace(options, explain=DEFAULT_METHOD)
    check_request(scorer, out, options, onnx)
    # a contiguous block of whole batches: the batches are the one-process run's, so the numbers are too
    mine = list(range(len(paths)))[
        batch_block(len(paths), options.batch_size, options.rank, options.world_size)
    ]
    rows: list[dict] = []
    skipped: list[dict] = []
    if options.rank == 0:  # once, whatever the number of ranks
        skipped += [
            {"index": len(paths) + k, "path": str(u["path"]), "reason": u["reason"]}
            for k, u in enumerate(unlisted)
        ]
    bar = tqdm(total=len(mine), desc="predict", unit="img", disable=not options.progress)
    for start in range(0, len(mine), options.batch_size):
        index = mine[start : start + options.batch_size]
        sources: dict[str, Any] = {}
        if options.dicom_out is not None:  # refused DICOM sources: skipped whole, before decoding
            from chestxai.serve.dicom_results import screen

            kept, refused = screen([paths[i] for i in index], options.dicom_force_modality)
            skipped += [
                {"index": index[k], "path": str(paths[index[k]]), "reason": r} for k, r in refused.items()
            ]
            sources = {str(paths[index[k]]): ds for k, ds in kept.items()}
            index = [i for k, i in enumerate(index) if k not in refused]
        loaded = load_files([paths[i] for i in index], scorer.resize_to)
        skipped += [
            {"index": index[s["position"]], "path": s["path"], "reason": s["reason"]} for s in loaded.skipped
        ]
        if len(loaded.paths):
            scored = _score(scorer, loaded, [index[k] for k in loaded.positions], out, options)
            if options.dicom_out is not None:
                from chestxai.serve.dicom_results import write_rows

                skipped += write_rows(scorer, scored, sources, options)
            rows += scored
        bar.update(len(mine[start : start + options.batch_size]))
    bar.close()
    frame = _frame(rows, scorer, options)
    skipped_frame = pd.DataFrame(skipped, columns=["index", "path", "reason"])
    if options.world_size > 1:
        frame, skipped_frame = _merge(frame, skipped_frame, out, options)
        if frame is None:  # not rank 0
            return {"rank": options.rank, "n_images": len(rows), "n_skipped": len(skipped)}
    frame = frame.sort_values("index").drop(columns="index")
    skipped_frame = skipped_frame.sort_values("index").drop(columns="index")
    _write_csv(frame, out)
    _write_csv(skipped_frame, skipped_path(out))
    from chestxai.serve.dicom_results import listing

    return {
        "out": str(out),
        "skipped_csv": str(skipped_path(out)),
        "n_images": len(frame),
        "n_skipped": len(skipped_frame),
        "skipped": skipped_frame.to_dict("records"),
        "labels": list(scorer.label_names),
        "dicom": listing(frame),  # [{"source", "sr", "pmap", "pr"}] with --dicom-out
    }


def _score(scorer: Any, loaded, index: list[int], out: Path, options: PredictOptions) -> list[dict]:
    probs = scorer.forward(loaded.images, batch_size=options.batch_size)
    decisions = scorer.decisions(probs)
    names = scorer.label_names
    rows = []
    for k, (i, path) in enumerate(zip(index, loaded.paths, strict=True)):
        row: dict[str, Any] = {"index": i, "path": path}
        row.update({prob_column(n): float(probs[k, j]) for j, n in enumerate(names)})
        row.update({decision_column(n): int(decisions[k, j]) for j, n in enumerate(names)})
        rows.append(row)
    conformal = getattr(scorer, "conformal", None)  # `uncertainty RUN --conformal` was run: its sets
    if conformal is not None:
        for col, values in conformal.apply(probs).items():
            for row, v in zip(rows, values, strict=True):
                row[col] = v
    if options.uncertainty:
        u = scorer.uncertainty(loaded.images, options.uncertainty, passes=options.passes, seed=options.seed)
        for k, row in enumerate(rows):
            row.update({mean_column(n): float(u["mean"][k, j]) for j, n in enumerate(names)})
            row.update({std_column(n): float(u["std"][k, j]) for j, n in enumerate(names)})
    if options.explain:
        _explain(scorer, loaded, probs, decisions, rows, out, options)
    return rows


def _explain(
    scorer,
    loaded,
    probs: np.ndarray,
    decisions: np.ndarray,
    rows: list[dict],
    out: Path,
    options: PredictOptions,
) -> None:
    from chestxai.explain.choice import choose_target
    from chestxai.explain.overlay import draw_boxes, overlay_heatmap, save_png
    from chestxai.explain.spaces import ORIGINAL, OVERLAY_MAX_SIDE, boxes_in_space
    from chestxai.serve.inputs import decode_file
    from chestxai.serve.render import display_image

    names = scorer.label_names
    targets = [choose_target(names, probs[k], decisions[k], options.label) for k in range(len(rows))]
    heatmaps = scorer.explain(loaded.images, [t.index for t in targets], options.explain)
    folder = overlay_dir(out, options.explain)
    folder.mkdir(parents=True, exist_ok=True)
    for k, row in enumerate(rows):
        unit = decode_file(row["path"])  # the original again: boxes and overlay in its pixels
        shape = unit.shape[:2]
        boxes, _ = boxes_in_space(heatmaps[k], shape, options.box_space)
        drawn = boxes if options.box_space == ORIGINAL else boxes_in_space(heatmaps[k], shape, ORIGINAL)[0]
        picture = display_image(unit, OVERLAY_MAX_SIDE)  # the original's size, bounded
        f = picture.shape[1] / shape[1]
        rgb = draw_boxes(
            overlay_heatmap(picture, heatmaps[k]), [[v * f for v in b.as_tuple()] for b in drawn]
        )
        stem = folder / item_stem(row["index"], row["path"])
        png = save_png(stem.with_suffix(".png"), rgb)
        npy = stem.with_suffix(".npy")
        np.save(npy, np.asarray(heatmaps[k], np.float32))
        row["explained_label"] = targets[k].name
        row["explained_positive"] = int(targets[k].positive)
        row["explained_by"] = targets[k].selected_by
        row["overlay"] = str(png)
        row["heatmap_npy"] = str(npy)
        row["image_width"], row["image_height"] = int(shape[1]), int(shape[0])
        row["box_space"] = options.box_space
        row["boxes"] = json.dumps([list(b.as_tuple()) for b in boxes])
        if options.dicom_out is not None:  # for the DICOM writer (serve.dicom_results); not a CSV column
            row["_dicom"] = {
                "heatmap": heatmaps[k],
                "boxes": [b.as_tuple() for b in drawn],
                "probabilities": probs[k],
                "decisions": decisions[k],
                "stem": stem.name,
            }


def _frame(rows: list[dict], scorer, options: PredictOptions) -> pd.DataFrame:
    names = scorer.label_names
    cols = ["index", "path", *map(prob_column, names), *map(decision_column, names)]
    if options.uncertainty:
        cols += [mean_column(n) for n in names] + [std_column(n) for n in names]
    if getattr(scorer, "conformal", None) is not None:
        cols += CONFORMAL_COLUMNS[scorer.conformal.method == "triage"]
    if options.explain:
        cols += [
            "explained_label",
            "explained_positive",
            "explained_by",
            "overlay",
            "heatmap_npy",
            "image_width",
            "image_height",
            "box_space",
            "boxes",
        ]
    if options.dicom_out is not None:
        from chestxai.serve.dicom_results import COLUMNS

        cols += COLUMNS
    return pd.DataFrame(rows, columns=cols)


def _merge(frame: pd.DataFrame, skipped: pd.DataFrame, out: Path, options: PredictOptions):
    """Each rank writes its part; rank 0 reads every part back (after the barrier) and removes them."""
    _write_csv(frame, _part(out, options.rank, "rows"))
    _write_csv(skipped, _part(out, options.rank, "skipped"))
    options.barrier()
    if options.rank != 0:
        return None, None
    ranks = range(options.world_size)
    frames = [pd.read_csv(_part(out, r, "rows"), dtype={"path": str}) for r in ranks]
    skips = [pd.read_csv(_part(out, r, "skipped"), dtype={"path": str, "reason": str}) for r in ranks]
    for r in ranks:
        for what in ("rows", "skipped"):
            os.unlink(_part(out, r, what))
    return pd.concat(frames, ignore_index=True), pd.concat(skips, ignore_index=True)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)

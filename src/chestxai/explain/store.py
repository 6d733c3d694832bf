"""Write explanations into the run directory, the interface the report and viewer read.

Layout (``RUN/`` = the run directory; names from :class:`~chestxai.rundir.RunDir`)::

    cams/index.csv               image_id, label, method, split, overlay   (overlay: PNG path relative to RUN)
    cams/<method>/               the test split's outputs; another split's go to cams/<method>@<split>/
                                 (``@files`` for --images)
    cams/<method>/<id>__<label>.png   heatmap over the image, predicted boxes green, ground truth white
    cams/<method>/heatmaps.npy   float16 N x S x S heatmaps in [0, 1] at the model's input size S
    cams/<method>/heatmaps.csv   image_id, label, index (row of heatmaps.npy), height, width (of the image)
    cams/<method>/boxes.csv      image_id, label, box, x, y, w, h, score   (pixels of the image)
    cams/<method>/scores.csv     per item: hit, iou, iobb, energy, border_energy, outside_lungs,
                                 deletion_auc, insertion_auc, road
    explain_metrics.json         see :func:`update_metrics`

Re-running a method on the same split replaces its rows and files and leaves other methods' and
other splits' results in place (``explain_metrics.json`` keeps one entry per method and split).
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.atomic import atomic_path, write_text
from chestxai.explain.controls import entry_warnings, versus_control
from chestxai.explain.items import Item
from chestxai.explain.map_agreement import random_pairs_baseline
from chestxai.explain.measure import MethodResult
from chestxai.explain.methods import CONTROL
from chestxai.explain.overlay import (
    GT_COLOR,
    PRED_COLOR,
    draw_boxes,
    overlay_heatmap,
    resize_heatmap,
    save_png,
)
from chestxai.rundir import PRIMARY_SPLIT, RunDir, explain_key, safe_name
from chestxai.rundir.jsonfile import read_json, write_json
from chestxai.rundir.tables import CAM_INDEX_COLUMNS, update_cam_index

INDEX_COLUMNS = list(CAM_INDEX_COLUMNS)
FORMAT = 2  # 2: entries keyed by method and split, a split column in the tables


def _atomic_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def method_dir(run_root: Path, method: str, split: str = PRIMARY_SPLIT) -> Path:
    return RunDir(Path(run_root)).cam_method(method, split)


def write_method(
    run_root: str | Path,
    items: Sequence[Item],
    result: MethodResult,
    overlays: bool = True,
    split: str = PRIMARY_SPLIT,
) -> pd.DataFrame:
    """Heatmaps, boxes, per-item scores and (optionally) overlays of one method on one split
    (``files`` for images given by path); returns its index rows."""
    root = Path(run_root)
    out = method_dir(root, result.method, split)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    with atomic_path(out / "heatmaps.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, result.heatmaps.astype(np.float16))
    _atomic_csv(
        out / "heatmaps.csv",
        pd.DataFrame(
            {
                "image_id": [it.image_id for it in items],
                "label": [it.finding for it in items],
                "index": np.arange(len(items)),
                "height": [it.image.shape[0] for it in items],
                "width": [it.image.shape[1] for it in items],
            }
        ),
    )
    box_rows = [
        {
            "image_id": it.image_id,
            "label": it.finding,
            "box": k,
            "x": b.x,
            "y": b.y,
            "w": b.w,
            "h": b.h,
            "score": b.score,
        }
        for it, bxs in zip(items, result.boxes, strict=True)
        for k, b in enumerate(bxs)
    ]
    _atomic_csv(
        out / "boxes.csv",
        pd.DataFrame(box_rows, columns=["image_id", "label", "box", "x", "y", "w", "h", "score"]),
    )
    _atomic_csv(out / "scores.csv", result.scores.rename(columns={"finding": "label"}))
    rows = []
    if overlays:
        for it, hm, bxs in zip(items, result.heatmaps, result.boxes, strict=True):
            rgb = overlay_heatmap(
                it.image,
                resize_heatmap(hm, it.image.shape[:2]),
                result.settings.colormap,
                result.settings.opacity,
            )
            rgb = draw_boxes(rgb, it.gt_boxes, GT_COLOR)
            rgb = draw_boxes(rgb, [b.as_tuple() for b in bxs], PRED_COLOR)
            path = out / f"{safe_name(it.image_id)}__{safe_name(it.finding)}.png"
            save_png(path, rgb)
            rows.append(
                {
                    "image_id": it.image_id,
                    "label": it.finding,
                    "method": result.method,
                    "split": split,
                    "overlay": path.relative_to(root).as_posix(),
                }
            )
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def update_index(
    run_root: str | Path, rows: pd.DataFrame, methods: Sequence[str], split: str = PRIMARY_SPLIT
) -> Path:
    """Replace the rows of ``methods`` on ``split`` in ``cams/index.csv`` (everything else kept)."""
    return update_cam_index(RunDir(Path(run_root)), rows, methods, split)


def maps_baseline(result: MethodResult) -> dict:
    """Arun et al.'s random-pairs baseline of ``result``'s maps, one map per image (the first item
    of each image: two findings of one image are not a pair of different images). How alike maps
    of *different* images are: near 1, the method shows one picture whatever the image
    (:func:`chestxai.explain.map_agreement.image_independence` puts it in words)."""
    ids = result.scores["image_id"].astype(str)
    first = np.flatnonzero(~ids.duplicated().to_numpy())
    maps = np.asarray(result.heatmaps, np.float64)[first]
    empty = int((np.ptp(maps.reshape(len(maps), -1), axis=1) == 0).sum()) if len(maps) else 0
    # empty (constant) maps have no ranks: pairs with one say nothing about image-independence
    return random_pairs_baseline(maps) | {"n_empty_maps": empty}


def method_entry(
    result: MethodResult,
    control: MethodResult | None,
    source: str,
    skipped: list[dict],
    split: str = PRIMARY_SPLIT,
    sanity: dict | None = None,
) -> dict:
    """The entry of explain_metrics.json for one method on one split and its random control:
    the figures, their paired comparison with the control (``vs_control``), the border /
    outside-lung energy (``anatomy``), how alike maps of different images are (``random_pairs``,
    :func:`maps_baseline`), the sanity check when run, and every ``warnings`` sentence
    (:func:`chestxai.explain.controls.entry_warnings`)."""
    is_control = result.method == CONTROL
    entry = {
        "method": result.method,
        "split": split,
        "layer": result.layer,
        "grid": list(result.grid) if result.grid else None,
        "is_control": is_control,
        "images": source,
        "n_items": int(len(result.scores)),
        "n_scored": int(result.scores["hit"].notna().sum()),
        "images_per_second": result.images_per_second,
        "settings": result.settings.as_dict(),
        "localization": result.localization(),
        "faithfulness": result.faithfulness(),
        "anatomy": result.anatomy,
        "random_pairs": maps_baseline(result),
        "skipped": list(skipped),
    }
    if control is not None:
        entry["control"] = {
            "method": control.method,
            "localization": control.localization(),
            "faithfulness": control.faithfulness(),
            "anatomy": control.anatomy,
        }
        if not is_control:
            entry["vs_control"] = versus_control(result.scores, control.scores)
    if sanity is not None:
        entry["sanity"] = sanity
    entry["warnings"] = entry_warnings(entry)
    return entry


def _localization_rows(name: str, entry: dict) -> list[dict]:
    loc = entry.get("localization")
    if not loc:
        return []
    ctrl = (entry.get("control") or {}).get("localization") or {}
    groups = [("(all)", loc["overall"], (ctrl.get("overall") or {}))]
    groups += [(f, v, (ctrl.get("per_finding") or {}).get(f, {})) for f, v in loc["per_finding"].items()]
    rows = []
    for finding, vals, cvals in groups:
        row = {
            "method": entry.get("method", name),
            "split": entry.get("split", PRIMARY_SPLIT),
            "finding": finding,
        }
        for k, v in vals.items():
            row[k] = v
            if k != "n":
                row[f"{k}_random"] = cvals.get(k)
        rows.append(row)
    return rows


def _faithfulness_rows(name: str, entry: dict) -> list[dict]:
    f = entry.get("faithfulness")
    if not f:
        return []
    ctrl = (entry.get("control") or {}).get("faithfulness") or {}
    row = {
        "method": entry.get("method", name),
        "split": entry.get("split", PRIMARY_SPLIT),
        "n": f["n"],
        "score": f.get("score", "probability"),  # entries written before logits were scored
    }
    vs = entry.get("vs_control") or {}
    for k in ("deletion_auc", "insertion_auc", "road"):
        row[k] = f.get(k)
        row[f"{k}_random"] = ctrl.get(k)
        if not entry.get("is_control"):
            row[f"{k}_beats_random"] = (vs.get(k) or {}).get("beats")
    return [row]


def _anatomy_rows(name: str, entry: dict) -> list[dict]:
    a = entry.get("anatomy")
    if not a:
        return []
    ctrl = (entry.get("control") or {}).get("anatomy") or {}
    row = {
        "method": entry.get("method", name),
        "split": entry.get("split", PRIMARY_SPLIT),
        "n": a["n"],
        "n_empty": a.get("n_empty", 0),
        "grid": "x".join(map(str, entry["grid"])) if entry.get("grid") else None,
        "border_px": a["border_px"],
        "border_area_share": a["border_area_share"],
        "border_energy": a["border_energy"],
        "border_energy_random": ctrl.get("border_energy"),
        "peaks_on_border": a["peaks_on_border"],
        "outside_lungs": a.get("outside_lungs"),
        "outside_lungs_random": ctrl.get("outside_lungs"),
    }
    return [row]


def _sanity_rows(name: str, entry: dict) -> list[dict]:
    s = entry.get("sanity")
    if not s or not s.get("final"):
        return []
    return [
        {
            "method": entry.get("method", name),
            "split": entry.get("split", PRIMARY_SPLIT),
            "layer": s.get("layer"),
            "n_images": s.get("n_images"),
            "spearman_all_random": s["final"]["spearman"],
            "ssim_all_random": s["final"]["ssim"],
            "baseline_ssim": s.get("baseline_ssim"),
            "threshold": s.get("threshold"),
            "passed": s.get("passed"),
        }
    ]


def update_metrics(
    run_root: str | Path,
    entries: dict[str, dict],
    skipped: list[dict] | None = None,
    layer_comparison: dict | None = None,
) -> dict:
    """Merge method entries into ``RUN/explain_metrics.json`` and rebuild its flat tables.

    ``entries`` are :func:`method_entry` results; each is stored under its key
    (:func:`~chestxai.rundir.explain_key`: the method for the test split, ``method@split``
    otherwise), so explaining another split or method adds an entry and re-running one replaces
    only that entry. Shape::

        {"format": 2,
         "methods": {key: {method, split, layer, images, n_items, n_scored, images_per_second, settings,
                            localization: {overall, per_finding: {finding: {...}}, mean_over_findings} | null,
                            faithfulness: {n, deletion_auc, insertion_auc, road} | null,
                            faithfulness: {n, score ("logit"), deletion_auc, insertion_auc, road} | null,
                            grid: [rows, cols] of the CAM, is_control,
                            anatomy: {n, map_size, border_px, border_area_share, border_energy,
                                      peaks_on_border, outside_lungs, n_lung_masks},
                            random_pairs: {ssim, ssim_std, spearman, n_pairs, n_maps, n_empty_maps, seed,
                                           definition}
                                          (Arun et al.'s baseline of these maps, one per image),
                            control: {method: "random", localization, faithfulness, anatomy},
                            vs_control: {rule, metric: {n, method, random, diff, se, beats}},
                            sanity: (with --sanity) chestxai.explain.sanity.randomisation_similarity,
                            warnings: [sentence, ...], skipped: [...]}},
         "localization_table": [{method, split, finding ("(all)" = every item), n, pointing_game,
                                 pointing_game_random, iou, iou_random, iobb, iobb_random,
                                 energy, energy_random, acc_iobb_0.1, acc_iobb_0.1_random, ...}],
         "faithfulness_table": [{method, split, n, score, deletion_auc, deletion_auc_random,
                                 deletion_auc_beats_random, ..., road, road_random, road_beats_random}],
         "anatomy_table": [{method, split, n, grid, border_px, border_area_share, border_energy,
                            border_energy_random, peaks_on_border, outside_lungs, outside_lungs_random}],
         "sanity_table": [{method, split, layer, n_images, spearman_all_random, ssim_all_random,
                           baseline_ssim, threshold, passed}],
         "warnings": {key: [sentence, ...]}   (every entry's warnings, keyed like "methods"),
         "layer_comparison": {key: ...}       (kept; written by ``--compare-layers``),
         "skipped": [{item, reason}]}   (of the latest invocation)

    ``*_random`` is the random-map control on the very same items as the method.
    """
    path = RunDir(Path(run_root)).explain_metrics
    data = read_json(path) if path.exists() else {}
    methods = dict(data.get("methods", {}))
    for entry in entries.values():
        methods[explain_key(entry["method"], entry.get("split", PRIMARY_SPLIT))] = entry
    if layer_comparison is not None:
        key = explain_key(layer_comparison["method"], layer_comparison.get("split", PRIMARY_SPLIT))
        data = {**data, "layer_comparison": {**(data.get("layer_comparison") or {}), key: layer_comparison}}

    def rows(fn) -> list[dict]:
        return [r for name in sorted(methods) for r in fn(name, methods[name])]

    data = {
        "format": FORMAT,
        "methods": methods,
        "localization_table": rows(_localization_rows),
        "faithfulness_table": rows(_faithfulness_rows),
        "anatomy_table": rows(_anatomy_rows),
        "sanity_table": rows(_sanity_rows),
        "warnings": {k: list(methods[k].get("warnings") or []) for k in sorted(methods)},
        "layer_comparison": dict(data.get("layer_comparison") or {}),
        "skipped": list(skipped or []),
    }
    write_json(data, path)
    return read_json(path)

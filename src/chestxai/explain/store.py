"""Write explanations into the run directory, the interface the report and viewer read.

Layout (``RUN/`` = the run directory; names from :class:`~chestxai.rundir.RunDir`)::

    cams/index.csv               image_id, label, method, split, overlay   (overlay: PNG path relative to RUN)
    cams/<method>/               the test split's outputs; another split's go to cams/<method>@<split>/
                                 (``@files`` for --images)
    cams/<method>/<id>__<label>.png   heatmap over the image, predicted boxes green, ground truth white
    cams/<method>/heatmaps.npy   float16 N x S x S heatmaps in [0, 1] at the model's input size S
    cams/<method>/heatmaps.csv   image_id, label, index (row of heatmaps.npy), height, width (of the image)
    cams/<method>/boxes.csv      image_id, label, box, x, y, w, h, score   (pixels of the image)
    cams/<method>/scores.csv     per item: hit, iou, iobb, energy, deletion_auc, insertion_auc, road
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
from chestxai.explain.evaluate import MethodResult
from chestxai.explain.items import Item
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


def method_entry(
    result: MethodResult,
    control: MethodResult | None,
    source: str,
    skipped: list[dict],
    split: str = PRIMARY_SPLIT,
) -> dict:
    """The entry of explain_metrics.json for one method on one split and its random control."""
    entry = {
        "method": result.method,
        "split": split,
        "layer": result.layer,
        "images": source,
        "n_items": int(len(result.scores)),
        "n_scored": int(result.scores["hit"].notna().sum()),
        "images_per_second": result.images_per_second,
        "settings": result.settings.as_dict(),
        "localization": result.localization(),
        "faithfulness": result.faithfulness(),
        "skipped": list(skipped),
    }
    if control is not None:
        entry["control"] = {
            "method": control.method,
            "localization": control.localization(),
            "faithfulness": control.faithfulness(),
        }
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
    row = {"method": entry.get("method", name), "split": entry.get("split", PRIMARY_SPLIT), "n": f["n"]}
    for k in ("deletion_auc", "insertion_auc", "road"):
        row[k] = f.get(k)
        row[f"{k}_random"] = ctrl.get(k)
    return [row]


def update_metrics(run_root: str | Path, entries: dict[str, dict], skipped: list[dict] | None = None) -> dict:
    """Merge method entries into ``RUN/explain_metrics.json`` and rebuild its flat tables.

    ``entries`` are :func:`method_entry` results; each is stored under its key
    (:func:`~chestxai.rundir.explain_key`: the method for the test split, ``method@split``
    otherwise), so explaining another split or method adds an entry and re-running one replaces
    only that entry. Shape::

        {"format": 2,
         "methods": {key: {method, split, layer, images, n_items, n_scored, images_per_second, settings,
                            localization: {overall, per_finding: {finding: {...}}, mean_over_findings} | null,
                            faithfulness: {n, deletion_auc, insertion_auc, road} | null,
                            control: {method: "random", localization, faithfulness}, skipped: [...]}},
         "localization_table": [{method, split, finding ("(all)" = every item), n, pointing_game,
                                 pointing_game_random, iou, iou_random, iobb, iobb_random,
                                 energy, energy_random, acc_iobb_0.1, acc_iobb_0.1_random, ...}],
         "faithfulness_table": [{method, split, n, deletion_auc, deletion_auc_random, ..., road, road_random}],
         "skipped": [{item, reason}]}   (of the latest invocation)

    ``*_random`` is the random-map control on the very same items as the method.
    """
    path = RunDir(Path(run_root)).explain_metrics
    data = read_json(path) if path.exists() else {}
    methods = dict(data.get("methods", {}))
    for entry in entries.values():
        methods[explain_key(entry["method"], entry.get("split", PRIMARY_SPLIT))] = entry
    loc_rows = [r for name in sorted(methods) for r in _localization_rows(name, methods[name])]
    faith_rows = [r for name in sorted(methods) for r in _faithfulness_rows(name, methods[name])]
    data = {
        "format": FORMAT,
        "methods": methods,
        "localization_table": loc_rows,
        "faithfulness_table": faith_rows,
        "skipped": list(skipped or []),
    }
    write_json(data, path)
    return read_json(path)

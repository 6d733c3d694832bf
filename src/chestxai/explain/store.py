"""Write explanations into the run directory, the interface the report and viewer read.

Layout (``RUN/`` = the run directory)::

    cams/index.csv               image_id, label, method, overlay   (overlay: PNG path relative to RUN)
    cams/<method>/<id>__<label>.png   heatmap over the image, predicted boxes green, ground truth white
    cams/<method>/heatmaps.npy   float16 N x S x S heatmaps in [0, 1] at the model's input size S
    cams/<method>/heatmaps.csv   image_id, label, index (row of heatmaps.npy), height, width (of the image)
    cams/<method>/boxes.csv      image_id, label, box, x, y, w, h, score   (pixels of the image)
    cams/<method>/scores.csv     per item: hit, iou, iobb, energy, deletion_auc, insertion_auc, road
    explain_metrics.json         see :func:`update_metrics`

Re-running a method replaces its rows and files and leaves other methods' results in place.
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import re
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

INDEX_COLUMNS = ["image_id", "label", "method", "overlay"]
METRICS_FILE = "explain_metrics.json"
FORMAT = 1


def safe_name(text: str) -> str:
    """A file-name-safe version of an id or label (keeps letters, digits, ``.-_+``)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._") or "_"


def _atomic_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def method_dir(run_root: Path, method: str) -> Path:
    return Path(run_root) / "cams" / safe_name(method)


def write_method(
    run_root: str | Path, items: Sequence[Item], result: MethodResult, overlays: bool = True
) -> pd.DataFrame:
    """Heatmaps, boxes, per-item scores and (optionally) overlays of one method; returns its index rows."""
    root = Path(run_root)
    out = method_dir(root, result.method)
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
                    "overlay": path.relative_to(root).as_posix(),
                }
            )
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def update_index(run_root: str | Path, rows: pd.DataFrame, methods: Sequence[str]) -> Path:
    """Replace the rows of ``methods`` in ``cams/index.csv`` with ``rows`` (other methods kept)."""
    path = Path(run_root) / "cams" / "index.csv"
    old = (
        pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.exists()
        else pd.DataFrame(columns=INDEX_COLUMNS)
    )
    old = old[~old["method"].isin(list(methods))]
    merged = pd.concat([old[INDEX_COLUMNS], rows[INDEX_COLUMNS]], ignore_index=True)
    _atomic_csv(path, merged)
    return path


def method_entry(
    result: MethodResult, control: MethodResult | None, source: str, skipped: list[dict]
) -> dict:
    """The ``methods[<name>]`` entry of explain_metrics.json for one method and its random control."""
    entry = {
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
        row = {"method": name, "finding": finding}
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
    row = {"method": name, "n": f["n"]}
    for k in ("deletion_auc", "insertion_auc", "road"):
        row[k] = f.get(k)
        row[f"{k}_random"] = ctrl.get(k)
    return [row]


def update_metrics(run_root: str | Path, entries: dict[str, dict], skipped: list[dict] | None = None) -> dict:
    """Merge method entries into ``RUN/explain_metrics.json`` and rebuild its flat tables.

    Shape::

        {"format": 1,
         "methods": {name: {layer, images, n_items, n_scored, images_per_second, settings,
                            localization: {overall, per_finding: {finding: {...}}, mean_over_findings} | null,
                            faithfulness: {n, deletion_auc, insertion_auc, road} | null,
                            control: {method: "random", localization, faithfulness}, skipped: [...]}},
         "localization_table": [{method, finding ("(all)" = every item), n, pointing_game,
                                 pointing_game_random, iou, iou_random, iobb, iobb_random,
                                 energy, energy_random, acc_iobb_0.1, acc_iobb_0.1_random, ...}],
         "faithfulness_table": [{method, n, deletion_auc, deletion_auc_random, insertion_auc, ..., road, road_random}],
         "skipped": [{item, reason}]}

    ``*_random`` is the random-map control on the very same items as the method.
    """
    path = Path(run_root) / METRICS_FILE
    data = json.loads(path.read_text()) if path.exists() else {}
    methods = dict(data.get("methods", {}))
    methods.update(entries)
    loc_rows = [r for name in sorted(methods) for r in _localization_rows(name, methods[name])]
    faith_rows = [r for name in sorted(methods) for r in _faithfulness_rows(name, methods[name])]
    data = {
        "format": FORMAT,
        "methods": methods,
        "localization_table": loc_rows,
        "faithfulness_table": faith_rows,
        "skipped": list(skipped or []),
    }
    data = _clean(data)
    write_text(path, json.dumps(data, indent=2, allow_nan=False))
    return data


def _clean(obj):
    """JSON-safe copy: NumPy scalars to Python, NaN/inf to null (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj

"""What a dataset holds, before any image is decoded: counts per label, boxes, masks, files on disk.

``chestxai data summary`` prints this; tests compare it with the datasets' published figures,
which is how a reader is shown to read its source correctly. Everything here works from the
label tables alone: missing images are counted, not an error.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from chestxai.data.table import ImageTable


def count_existing(paths: Iterable[str]) -> int:
    """How many of ``paths`` exist, listing each folder once instead of one ``stat`` per file.

    A label table read without its images (112k NIH rows under a missing ``images/``) costs one
    failed ``listdir`` per folder, not one per image.
    """
    by_dir: dict[str, list[str]] = {}
    for p in paths:
        if p:
            d, name = os.path.split(str(p))
            by_dir.setdefault(d, []).append(name)
    n = 0
    for d, names in by_dir.items():
        try:
            present = set(os.listdir(d))
        except OSError:
            continue
        n += sum(name in present for name in names)
    return n


def _side(df: pd.DataFrame) -> dict:
    return {
        "total": len(df),
        "images": int(df["image_id"].nunique()) if len(df) else 0,
        "per_label": {str(k): int(v) for k, v in df["label"].value_counts().sort_index().items()}
        if len(df)
        else {},
    }


def summarize(table: ImageTable, check_files: bool = True) -> dict:
    """Counts describing ``table`` as a JSON-ready dict.

    Keys: source, root, task, images, patients, label_names, labels (per label positive /
    negative / unknown), rows_all_negative, rows_unknown, boxes, masks, files (listed / exist /
    missing; in-memory sources count all as present), splits, views, notes.
    """
    frame = table.frame
    n = len(frame)
    labels = table.labels
    if table.arrays is not None:
        files = {"listed": n, "exist": n, "missing": 0, "in_memory": True}
    elif check_files:
        exist = count_existing(frame["path"].astype(str))
        files = {"listed": n, "exist": exist, "missing": n - exist, "in_memory": False}
    else:
        files = {"listed": n, "exist": None, "missing": None, "in_memory": False}
    masks = _side(table.masks)
    if len(table.masks):
        masks["kinds"] = {str(k): int(v) for k, v in table.masks["kind"].value_counts().items()}
    splits = Counter(str(s) if s else "none" for s in frame["split"].fillna(""))
    views = Counter(str(v) if v else "none" for v in frame["view"].fillna(""))
    has_labels = labels.shape[1] > 0
    return {
        "source": table.source,
        "root": str(table.root) if table.root is not None else None,
        "task": table.task,
        "images": n,
        "patients": int(frame["patient_id"].nunique()),
        "label_names": list(table.label_names),
        "labels": table.counts(),
        "rows_all_negative": int(np.all(labels == 0, axis=1).sum()) if has_labels else 0,
        "rows_unknown": int(np.all(np.isnan(labels), axis=1).sum()) if has_labels else n,
        "boxes": _side(table.boxes),
        "masks": masks,
        "files": files,
        "splits": dict(sorted(splits.items())),
        "views": dict(views.most_common()),
        "notes": list(table.notes),
    }


def format_summary(s: dict) -> str:
    """Plain-text rendering of :func:`summarize` for the terminal."""
    out = [
        f"source   {s['source']}  ({s['task']})",
        f"root     {s['root']}",
        f"images   {s['images']:,}   patients {s['patients']:,}",
    ]
    f = s["files"]
    if f["in_memory"]:
        out.append("files    in memory (arrays)")
    elif f["exist"] is None:
        out.append(f"files    {f['listed']:,} listed (not checked)")
    else:
        out.append(f"files    {f['exist']:,} of {f['listed']:,} on disk ({f['missing']:,} missing)")
    out.append("splits   " + ", ".join(f"{k} {v:,}" for k, v in s["splits"].items()))
    views = list(s["views"].items())
    out.append(
        "views    " + ", ".join(f"{k} {v:,}" for k, v in views[:8]) + (" ..." if len(views) > 8 else "")
    )
    if s["labels"]:
        width = max(len(n) for n in s["labels"])
        out.append("")
        out.append(f"{'label':<{width}}  {'positive':>9} {'negative':>9} {'unknown':>9}  {'boxes':>6}")
        per_box = s["boxes"]["per_label"]
        for name, c in s["labels"].items():
            out.append(
                f"{name:<{width}}  {c['positive']:>9,} {c['negative']:>9,} {c['unknown']:>9,}  {per_box.get(name, 0):>6,}"
            )
        out.append(
            f"rows with every label 0: {s['rows_all_negative']:,}; with every label unknown: {s['rows_unknown']:,}"
        )
    else:
        out.append("labels   none (unlabelled images)")
    b, m = s["boxes"], s["masks"]
    out.append(f"boxes    {b['total']:,} on {b['images']:,} images" + _per(b))
    out.append(f"masks    {m['total']:,} on {m['images']:,} images" + _per(m))
    if s["notes"]:
        out.append("")
        out.append("notes")
        out.extend(f"  - {n}" for n in s["notes"])
    return "\n".join(out)


def _per(side: dict) -> str:
    per = side["per_label"]
    return f"  ({', '.join(f'{k} {v:,}' for k, v in per.items())})" if per else ""

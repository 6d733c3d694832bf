"""Write a finished cache directory (the layout :mod:`chestxai.data.cache` reads) from work state.

Why the order matters: the report comes first (a strict failure still leaves it to read), then
the pixel files, the tables, and ``meta.json`` last and atomically: a cache directory with a
``meta.json`` is whole, whatever moment a kill came at. Each step is marked with a
:func:`~chestxai.crashpoints.crash_point` so tests can prove that a kill there leaves a cache that
the next ``prepare`` finishes into the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chestxai.atomic import write_text
from chestxai.crashpoints import crash_point
from chestxai.data import cache as C
from chestxai.data.cache_key import FORMAT_VERSION, RESIZE_METHOD
from chestxai.data.decode import DecodeSettings
from chestxai.data.table import ImageTable
from chestxai.data.work_state import EMPTY, OK, SKIPPED, WorkState


def mask_groups(table: ImageTable) -> list[tuple[str, str, pd.DataFrame]]:
    """(image_id, label, rows): one cache mask per image and label (SIIM splits regions over rows)."""
    masks = table.masks
    if masks.empty:
        return []
    ids = set(table.frame["image_id"].astype(str))
    masks = masks.assign(image_id=masks["image_id"].astype(str), label=masks["label"].astype(str))
    masks = masks[masks["image_id"].isin(ids)]
    return [(i, lab, g) for (i, lab), g in masks.groupby(["image_id", "label"], sort=False)]


def write_report(
    state: WorkState,
    table: ImageTable,
    groups: list[tuple[str, str, pd.DataFrame]],
    decode: DecodeSettings,
    seconds: float,
) -> dict[str, Any]:
    """Write ``prepare_report.json`` (what was kept, what was skipped and why) and return it."""
    status = np.asarray(state.status)
    if (status == 0).any():
        raise RuntimeError(f"{state.target}: the cache is written while items are still pending")
    reasons = state.reasons()
    frame, n, m = table.frame, state.n, state.m
    mstatus = status[n:]
    report = {
        "source": table.source,
        "key": state.key,
        "size": state.size,
        "n_total": n,
        "n_ok": int(np.sum(status[:n] == OK)),
        "n_skipped": int(np.sum(status[:n] != OK)),
        "skipped": [
            {
                "row": int(i),
                "image_id": str(frame["image_id"].iloc[i]),
                "path": str(frame["path"].iloc[i]),
                "reason": reasons.get(int(i), "unknown"),
            }
            for i in np.flatnonzero(status[:n] != OK)
        ],
        # folders the reader could not walk or would not follow (unreadable, link loops) and files it
        # would not open (FIFOs, devices, dangling links): whole classes can hide there, so --strict
        # treats them like skipped images
        "skipped_folders": [dict(s) for s in table.skipped],
        "masks": {
            "n_total": m,
            "n_ok": len(_kept_masks(status, groups, table, n)),
            "n_empty": int(np.sum(mstatus == EMPTY)),
            "failed": [
                {"image_id": groups[j][0], "label": groups[j][1], "reason": reasons.get(n + j)}
                for j in range(m)
                if mstatus[j] == SKIPPED
            ],
        },
        "seconds_last_run": round(seconds, 2),
        "decode": decode.as_dict(),
    }
    write_text(state.target / C.REPORT, json.dumps(report, indent=1, default=str))
    return report


def write_cache(
    state: WorkState,
    table: ImageTable,
    groups: list[tuple[str, str, pd.DataFrame]],
    *,
    root: Path | None,
    options: dict[str, Any],
    decode: DecodeSettings,
) -> None:
    """Compact the decoded rows, write index/labels/boxes/masks, then ``meta.json``; drop ``.work``."""
    target, n, m, s = state.target, state.n, state.m, state.size
    status = np.asarray(state.status)
    kept = np.flatnonzero(status[:n] == OK)
    mkept = _kept_masks(status, groups, table, n)
    row_of = _row_of(table, kept)
    state.flush()
    _compact(state.image_map, target / C.IMAGES, kept, n, s)
    crash_point("prepare:after-images")
    _compact(state.mask_map, target / C.MASKS, np.array(mkept, np.int64), m, s)
    frame = table.frame
    frame.iloc[kept].reset_index(drop=True).to_csv(target / C.INDEX, index=False)
    np.save(target / C.LABELS, table.labels[kept].astype(np.float32))
    boxes = table.boxes.assign(image_id=table.boxes["image_id"].astype(str))
    boxes = boxes[boxes["image_id"].isin(row_of)]
    pd.DataFrame(
        {
            "image_id": boxes["image_id"],
            "row": boxes["image_id"].map(row_of).astype("int64"),
            "label": boxes["label"],
            **{c: boxes[c].astype(float) * s for c in "xywh"},
        }
    ).to_csv(target / C.BOXES, index=False)
    pd.DataFrame(
        {
            "image_id": [groups[j][0] for j in mkept],
            "row": [row_of[groups[j][0]] for j in mkept],
            "label": [groups[j][1] for j in mkept],
        }
    ).to_csv(target / C.MASK_INDEX, index=False)
    meta = {
        "format_version": FORMAT_VERSION,
        "source": table.source,
        "root": str(root) if root is not None else "",
        "options": options,
        "size": s,
        "label_names": list(table.label_names),
        "task": table.task,
        "n": int(len(kept)),
        "n_masks": len(mkept),
        "key": state.key,
        "decode": decode.as_dict(),
        "resize": RESIZE_METHOD,
        "notes": list(table.notes),
        "complete": True,
    }
    state.close()  # release the memory maps before removing their files
    crash_point("prepare:before-meta")
    write_text(target / C.META, json.dumps(meta, indent=1, default=str))  # its presence means "complete"
    crash_point("prepare:after-meta")
    state.remove()  # (a leftover is removed on the next reuse)


def _row_of(table: ImageTable, kept: np.ndarray) -> dict[str, int]:
    ids = table.frame["image_id"].astype(str).to_numpy()
    return dict(zip(ids[kept].tolist(), range(len(kept)), strict=True))


def _kept_masks(status: np.ndarray, groups: list, table: ImageTable, n: int) -> list[int]:
    """Masks that loaded and belong to a kept image (a mask of a skipped image has no row)."""
    row_of = _row_of(table, np.flatnonzero(status[:n] == OK))
    return [j for j in range(len(groups)) if status[n + j] == OK and groups[j][0] in row_of]


def _compact(src: Path, dst: Path, keep: np.ndarray, n: int, s: int) -> None:
    """Write rows ``keep`` of the ``n``-row work map ``src`` to ``dst`` (a rename when all are kept)."""
    if len(keep) == n and src.exists():
        os.replace(src, dst)
        return
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    if len(keep):
        data = np.memmap(src, dtype=np.uint8, mode="r", shape=(n, s, s))
        with open(tmp, "wb") as fh:
            for start in range(0, len(keep), 256):
                fh.write(np.ascontiguousarray(data[keep[start : start + 256]]).tobytes())
        del data
    else:
        tmp.write_bytes(b"")
    os.replace(tmp, dst)

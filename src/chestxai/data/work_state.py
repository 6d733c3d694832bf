"""Resumable work state of one preparation: preallocated rows and a status byte per item.

Why: preparing 100k images takes hours, and a kill (Ctrl-C, OOM, a lost session) must not cost
them. Everything lives in ``<cache>/.work/``: memory maps of every image and mask row at its
final size, ``status.u8`` (one byte per item, written *after* the item's pixels, so a set status
means the row is there) and ``reasons.jsonl`` (why an item was skipped). A re-run with the same
inputs opens the same maps and decodes only the items still ``PENDING``; rows are deterministic,
so a resumed cache equals a fresh one byte for byte.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from chestxai.atomic import write_text
from chestxai.data import cache as C

log = logging.getLogger(__name__)

WORK = ".work"
PENDING, OK, SKIPPED, EMPTY = 0, 1, 2, 3
_IMAGES, _MASKS, _STATUS, _STATE, _REASONS = (
    "images.u8",
    "masks.u8",
    "status.u8",
    "state.json",
    "reasons.jsonl",
)


class WorkState:
    """The ``.work`` folder of ``target``: ``n`` image rows and ``m`` mask rows of ``size`` px."""

    def __init__(self, target: Path, key: str, n: int, m: int, size: int):
        self.target, self.key, self.n, self.m, self.size = target, key, n, m, size
        self.work = target / WORK
        self.reasons_path = self.work / _REASONS
        state = self.work / _STATE
        if state.exists() and json.loads(state.read_text()).get("key") != key:
            log.warning("%s holds work of other inputs; starting over", self.work)
            shutil.rmtree(self.work)
        fresh = not state.exists()
        self.work.mkdir(parents=True, exist_ok=True)
        stale_meta = target / C.META
        if stale_meta.exists():  # a finished cache of other inputs, or a forced rebuild: no longer valid
            stale_meta.unlink()
        if not fresh:
            self._take_back_renamed_maps()
        s = size
        self.images = _memmap(self.work / _IMAGES, (n, s, s), fresh)
        self.masks = _memmap(self.work / _MASKS, (m, s, s), fresh)
        self.status = _memmap(self.work / _STATUS, (n + m,), fresh)
        if fresh:
            self.reasons_path.write_text("")
            write_text(state, json.dumps({"key": key, "n": n, "m": m, "size": s}, indent=1))
        elif n + m:
            done = int(np.count_nonzero(self.status))
            log.info("resuming %s: %d of %d items already done", target, done, n + m)

    def _take_back_renamed_maps(self) -> None:
        """A crash inside finalize may have renamed a full work map to its final name: take it back."""
        s = self.size
        for name, final, rows in ((_IMAGES, C.IMAGES, self.n), (_MASKS, C.MASKS, self.m)):
            src, dst = self.work / name, self.target / final
            if rows and not src.exists() and dst.exists() and dst.stat().st_size == rows * s * s:
                os.replace(dst, src)

    @property
    def image_map(self) -> Path:
        return self.work / _IMAGES

    @property
    def mask_map(self) -> Path:
        return self.work / _MASKS

    def pending(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.status) == PENDING)

    def put(self, index: int, status: int, value: object, reasons) -> None:
        """Store one result: pixels first, then the status byte (the order makes resuming safe)."""
        if status == OK:
            if index < self.n:
                self.images[index] = value
            else:
                self.masks[index - self.n] = value
        else:
            reasons.write(json.dumps({"index": index, "status": status, "reason": value}) + "\n")
        self.status[index] = status

    def flush(self) -> None:
        for mm in (self.images, self.masks, self.status):
            if isinstance(mm, np.memmap):
                mm.flush()

    def reasons(self) -> dict[int, str]:
        out = {}
        for line in self.reasons_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[int(rec["index"])] = rec["reason"]
        return out

    def close(self) -> None:
        """Release the memory maps (before their files are renamed or removed)."""
        self.flush()
        self.images = self.masks = self.status = None

    def remove(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _memmap(path: Path, shape: tuple[int, ...], fresh: bool) -> np.ndarray:
    """A uint8 memory map of ``shape`` (zero-length shapes get a plain array: mmap cannot be empty)."""
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, np.uint8)
    if fresh or not path.exists() or path.stat().st_size != int(np.prod(shape)):
        return np.memmap(path, dtype=np.uint8, mode="w+", shape=shape)
    return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)

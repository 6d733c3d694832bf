"""Resumable work state of one preparation: preallocated rows and a status byte per item.

Why: preparing 100k images takes hours, and a kill (Ctrl-C, OOM, a lost session) must not cost
them. Everything lives in ``<cache>/.work/``: memory maps of every image and mask row at its
final size, ``status.u8`` (one byte per item, written *after* the item's pixels, so a set status
means the row is there) and ``reasons.jsonl`` (why an item was skipped). A re-run with the same
inputs opens the same maps and decodes only the items still ``PENDING``; rows are deterministic,
so a resumed cache equals a fresh one byte for byte.

A shard of ``prepare --shard K/N`` (:mod:`.shards`) holds the same state for its share only: a
:class:`Span` of image rows and one of mask rows, so N shards on N machines store the dataset
once between them, not N times.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Span:
    """Image rows ``[images[0], images[1])`` and mask rows ``[masks[0], masks[1])`` of a work state."""

    images: tuple[int, int]
    masks: tuple[int, int]

    @classmethod
    def whole(cls, n: int, m: int) -> Span:
        return cls((0, n), (0, m))

    @property
    def n_images(self) -> int:
        return self.images[1] - self.images[0]

    @property
    def n_masks(self) -> int:
        return self.masks[1] - self.masks[0]

    def as_dict(self) -> dict:
        return {"images": list(self.images), "masks": list(self.masks)}


class WorkState:
    """The ``.work`` folder of ``target``: ``n`` image rows and ``m`` mask rows of ``size`` px.

    Items are numbered ``0..n-1`` (images) then ``n..n+m-1`` (masks) whatever the ``span``; a
    state over a part (``span``) stores only that part's rows and status bytes.
    """

    def __init__(self, target: Path, key: str, n: int, m: int, size: int, span: Span | None = None):
        self.target, self.key, self.n, self.m, self.size = target, key, n, m, size
        self.span = span or Span.whole(n, m)
        self.work = target / WORK
        self.reasons_path = self.work / _REASONS
        state = self.work / _STATE
        record = {"key": key, "n": n, "m": m, "size": size}
        if self.span != Span.whole(n, m):
            record["span"] = self.span.as_dict()
        if state.exists() and json.loads(state.read_text()) != record:
            log.warning("%s holds work of other inputs; starting over", self.work)
            shutil.rmtree(self.work)
        fresh = not state.exists()
        self.work.mkdir(parents=True, exist_ok=True)
        stale_meta = target / C.META
        if stale_meta.exists():  # a finished cache of other inputs, or a forced rebuild: no longer valid
            stale_meta.unlink()
        if not fresh and self.is_whole:
            self._take_back_renamed_maps()
        s, ni, nm = size, self.span.n_images, self.span.n_masks
        self.images = _memmap(self.work / _IMAGES, (ni, s, s), fresh)
        self.masks = _memmap(self.work / _MASKS, (nm, s, s), fresh)
        self.status = _memmap(self.work / _STATUS, (ni + nm,), fresh)
        if fresh:
            self.reasons_path.write_text("")
            write_text(state, json.dumps(record, indent=1))
        elif ni + nm:
            done = int(np.count_nonzero(self.status))
            log.info("resuming %s: %d of %d items already done", target, done, ni + nm)

    @property
    def is_whole(self) -> bool:
        return self.span == Span.whole(self.n, self.m)

    def item_indices(self) -> np.ndarray:
        """The (global) item number of every local status byte, in order."""
        (a0, a1), (b0, b1) = self.span.images, self.span.masks
        return np.concatenate([np.arange(a0, a1), self.n + np.arange(b0, b1)]).astype(np.int64)

    def _local(self, index: int) -> int:
        if index < self.n:
            return index - self.span.images[0]
        return self.span.n_images + index - self.n - self.span.masks[0]

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
        """Item numbers (global) still to decode."""
        return self.item_indices()[np.asarray(self.status) == PENDING]

    def put(self, index: int, status: int, value: object, reasons) -> None:
        """Store one result: pixels first, then the status byte (the order makes resuming safe)."""
        local = self._local(index)
        if status == OK:
            if index < self.n:
                self.images[local] = value
            else:
                self.masks[local - self.span.n_images] = value
        else:
            reasons.write(json.dumps({"index": index, "status": status, "reason": value}) + "\n")
            reasons.flush()  # before the status byte: a kill must not leave a skip without its reason
        self.status[local] = status

    @property
    def n_items(self) -> int:
        """Items this state holds (all ``n + m`` for a whole one, its share for a shard)."""
        return self.span.n_images + self.span.n_masks

    def absorb(self, part: WorkState, chunk: int = 512) -> None:
        """Copy a finished part (a shard's state over a span) into this whole state: rows first,
        then the reasons, then the status bytes, the same order as :meth:`put` keeps."""
        if (
            not self.is_whole
            or part.key != self.key
            or (part.n, part.m, part.size) != (self.n, self.m, self.size)
        ):
            raise ValueError(f"{part.work} is not a part of {self.work} (other inputs)")
        (a0, a1), (b0, b1) = part.span.images, part.span.masks
        for dst, src, lo, rows in (
            (self.images, part.images, a0, a1 - a0),
            (self.masks, part.masks, b0, b1 - b0),
        ):
            for start in range(0, rows, chunk):
                stop = min(start + chunk, rows)
                dst[lo + start : lo + stop] = src[start:stop]
        status = np.asarray(part.status)
        with open(self.reasons_path, "a") as fh:
            for index, reason in part.reasons().items():
                local = part._local(index)
                fh.write(json.dumps({"index": index, "status": int(status[local]), "reason": reason}) + "\n")
        self.flush()
        ni = part.span.n_images
        self.status[a0:a1] = status[:ni]
        self.status[self.n + b0 : self.n + b1] = status[ni:]

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
    nbytes = int(np.prod(shape))
    if fresh or not path.exists() or path.stat().st_size != nbytes:
        path.unlink(missing_ok=True)  # a fresh map is all zeros
    reserve(path, nbytes)  # then r+, not w+: w+ would truncate the reserved file back to a sparse one
    return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)


def reserve(path: Path, nbytes: int) -> None:
    """Allocate ``nbytes`` of disk for ``path`` now (existing bytes kept), so that a full disk is one
    clear error here instead of a SIGBUS ("Bus error") at whichever image first writes to a page
    the disk cannot hold. Filesystems without ``posix_fallocate`` keep a sparse file."""
    allocate = getattr(os, "posix_fallocate", None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if allocate is not None:
            try:
                allocate(fd, 0, nbytes)
                return
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    free = shutil.disk_usage(path.parent).free
                    raise OSError(
                        errno.ENOSPC,
                        f"not enough disk space for the prepared cache: {path.name} needs "
                        f"{nbytes / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free under {path.parent}; free some "
                        "space or put the cache elsewhere ($CHESTXAI_CACHE, or the command's --out / --cache)",
                    ) from None
                # EOPNOTSUPP, EINVAL ...: this filesystem cannot reserve; a sparse file, as before
        os.ftruncate(fd, max(nbytes, os.fstat(fd).st_size))
    finally:
        os.close(fd)

"""Decode + resize every image of a dataset once into the uint8 memory-mapped cache of ``cache.py``.

Why a cache: decoding a 1-3 MP PNG/JPEG/DICOM costs 5-150 ms; reading a 224 x 224 uint8 row from a
memory map costs microseconds. Training epochs then never touch the source files.

How, in order:

1. ``read_table`` (or a given :class:`ImageTable`) lists images, labels, boxes and masks.
2. :func:`cache_key` hashes everything that changes the cache bytes: source, root, reader options,
   the table's content, each file's size and mtime (or the in-memory arrays), ``size``, the decode
   settings and :data:`FORMAT_VERSION`. The directory is ``<out>/<source>-<size>px-<key[:10]>``;
   a finished one with the same key is reused as is.
3. Work state lives in ``<dir>/.work/``: preallocated memory maps (images, masks) and a one-byte
   status per item, written *after* the item's pixels. A killed run resumes by skipping items
   whose status is set; the rows are deterministic, so a resumed cache equals a fresh one.
4. Worker processes decode and resize (Lanczos on the float image, stretched to ``size x size``,
   not cropped, so fractional boxes map to ``x * size`` exactly); the parent writes rows.
5. One bad image never stops the run: it is skipped and listed with its reason in
   ``prepare_report.json``; ``strict=True`` turns any skip into :class:`PrepareError`.
6. Finalize compacts the decoded rows, writes index/labels/boxes/masks/report and writes
   ``meta.json`` (``complete: true``) last and atomically: a cache with a ``meta.json`` is whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chestxai.atomic import write_text
from chestxai.data import cache as C
from chestxai.data.decode import DecodeError, DecodeSettings, decode_image
from chestxai.data.resize import resize_mask, resize_unit, to_unit
from chestxai.data.table import ImageTable

log = logging.getLogger(__name__)

#: Bump when the bytes written for the same inputs change (resize method, rounding, layout).
FORMAT_VERSION = 1
RESIZE_METHOD = "pil-lanczos-float32;mask-box-threshold0.5"
WORK = ".work"
PENDING, OK, SKIPPED, EMPTY = 0, 1, 2, 3
_CHUNK = 8  # items per worker task: amortises inter-process overhead, keeps progress smooth


class PrepareError(ValueError):
    """Preparation failed as a whole (strict mode with skipped images, or nothing decoded)."""


# --- public API --------------------------------------------------------------------------------
def prepare(
    source: str | ImageTable,
    root: str | Path | None = None,
    *,
    size: int = 224,
    out: str | Path | None = None,
    workers: int | None = None,
    strict: bool = False,
    options: dict[str, Any] | None = None,
    decode: DecodeSettings | None = None,
    force: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Prepare (or reuse) the cache of ``source`` at ``size`` px and return its directory.

    ``source`` is a reader name (read with ``read_table(source, root, **options)``) or an
    :class:`ImageTable`. ``out`` defaults to ``<cache_root()>/prepared``. ``workers`` defaults to
    ``min(cpus, 4)``; ``0``/``1`` decode in this process. ``force`` rebuilds a finished cache.
    ``on_progress(done, total)`` is called after each item (progress UIs; tests use it to interrupt).
    """
    if int(size) < 8:
        raise ValueError(f"size={size} is too small; use e.g. --size 224")
    size = int(size)
    options = dict(options or {})
    decode = decode or DecodeSettings()
    if isinstance(source, ImageTable):
        table = source
        if options:
            raise ValueError("options are reader options; they cannot apply to an ImageTable you pass in")
    else:
        if root is None:
            raise ValueError(f"prepare({source!r}) needs root= (the folder holding the dataset)")
        from chestxai.data.readers import read_table

        table = read_table(source, root, **options)
    root_path = Path(root).expanduser() if root is not None else table.root
    if out is None:
        from chestxai.paths import cache_root

        out = cache_root() / "prepared"
    started = time.perf_counter()
    key = cache_key(table, root_path, options, size, decode)
    target = Path(out).expanduser() / f"{_slug(table.source)}-{size}px-{key[:10]}"
    if (target / C.META).exists() and not force:
        meta = json.loads((target / C.META).read_text())
        if meta.get("complete") and meta.get("key") == key:
            log.info("reusing prepared cache %s (same inputs, key %s)", target, key[:10])
            shutil.rmtree(target / WORK, ignore_errors=True)
            return target
    if force and target.exists():
        shutil.rmtree(target)
    # relative paths in a table are relative to the folder its reader reports (table.root)
    base = table.root if table.root is not None else root_path
    job = _Job(table, base, size, decode, target, key, given_root=root_path)
    job.run(
        workers=_default_workers(table) if workers is None else int(workers),
        progress=progress,
        cb=on_progress,
    )
    job.finalize(options=options, strict=strict, seconds=time.perf_counter() - started)
    log.debug("%s", summary(target))
    return target


def summary(path: str | Path) -> str:
    """One short paragraph about a prepared cache (what the CLI prints)."""
    path = Path(path)
    meta = json.loads((path / C.META).read_text())
    report = json.loads((path / C.REPORT).read_text()) if (path / C.REPORT).exists() else {}
    lines = [
        f"{meta['source']}: {meta['n']} images at {meta['size']}x{meta['size']} px, "
        f"{len(meta['label_names'])} labels ({meta['task']}), {meta.get('n_masks', 0)} masks -> {path}"
    ]
    skipped = report.get("skipped", [])
    if skipped:
        lines.append(f"skipped {len(skipped)} image(s) (details in {path / C.REPORT}):")
        for s in skipped[:10]:
            lines.append(f"  {s['path'] or s['image_id']}: {s['reason']}")
        if len(skipped) > 10:
            lines.append(f"  ... and {len(skipped) - 10} more")
    failed = report.get("masks", {}).get("failed", [])
    if failed:
        lines.append(f"{len(failed)} mask(s) failed to load (see report)")
    return "\n".join(lines)


def cache_key(
    table: ImageTable, root: Path | None, options: dict[str, Any], size: int, decode: DecodeSettings
) -> str:
    """SHA-256 over every input that changes the cache bytes (see module docstring)."""
    h = hashlib.sha256()

    def add(tag: str, value: Any) -> None:
        h.update(tag.encode())
        h.update(
            value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
        )

    add("version", [FORMAT_VERSION, RESIZE_METHOD])
    add("source", table.source)
    add("root", str(Path(root).resolve()) if root is not None else "")
    base = table.root if table.root is not None else root
    add("options", options)
    add("size", size)
    add("decode", decode.as_dict())
    add("labels", [table.label_names, table.task])
    add("labels.bytes", np.ascontiguousarray(table.labels).tobytes())
    for name, df in (("frame", table.frame), ("boxes", table.boxes), ("masks", table.masks)):
        add(name + ".cols", list(map(str, df.columns)))
        if len(df):
            add(name, pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
    if table.arrays is not None:
        add("arrays.shape", [list(table.arrays.shape), str(table.arrays.dtype)])
        if table.arrays.dtype == object:  # ragged in-memory images (one 2-D array per row)
            digest = hashlib.blake2b(digest_size=32)
            for a in table.arrays:
                digest.update(pickle.dumps(a, protocol=4))
            add("arrays", digest.digest())
        else:
            add("arrays", hashlib.blake2b(np.ascontiguousarray(table.arrays).data, digest_size=32).digest())
    else:
        add("files", [_stat(p) for p in _image_paths(table, base)])
    return h.hexdigest()


# --- helpers -----------------------------------------------------------------------------------
def _default_workers(table: ImageTable | None = None) -> int:
    # in-memory sources (MedMNIST arrays) only resize: worker processes would cost more in
    # pickling than they save, and spawning them breaks scripts without a __main__ guard
    if table is not None and table.arrays is not None:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "table"


def _resolve(path: str, root: Path | None) -> Path:
    p = Path(str(path)).expanduser()
    return p if p.is_absolute() or root is None else Path(root) / p


def _image_paths(table: ImageTable, root: Path | None) -> list[Path]:
    return [_resolve(p, root) for p in table.frame["path"].astype(str)]


def _stat(p: Path) -> tuple[int, int]:
    try:
        st = p.stat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def _mask_groups(table: ImageTable) -> list[tuple[str, str, pd.DataFrame]]:
    """(image_id, label, rows): one cache mask per image and label (SIIM splits regions over rows)."""
    masks = table.masks
    if masks.empty:
        return []
    ids = set(table.frame["image_id"].astype(str))
    masks = masks.assign(image_id=masks["image_id"].astype(str), label=masks["label"].astype(str))
    masks = masks[masks["image_id"].isin(ids)]
    return [(i, lab, g) for (i, lab), g in masks.groupby(["image_id", "label"], sort=False)]


# --- worker side (top-level functions so they pickle) ------------------------------------------
def _work(items: list[tuple], size: int, decode: DecodeSettings) -> list[tuple[int, int, Any]]:
    """Decode + resize a chunk. Returns ``(index, status, uint8 array | reason)`` per item."""
    from chestxai.data.masks import load_mask

    results = []
    for index, kind, payload, root in items:
        try:
            if kind == "array":
                results.append((index, OK, resize_unit(to_unit(payload), size)))
            elif kind == "image":
                results.append((index, OK, resize_unit(decode_image(payload, decode), size)))
            else:  # mask: payload is the list of mask-table rows of one image+label
                mask = load_mask(pd.DataFrame(payload), root)
                status = OK if mask.any() else EMPTY
                results.append((index, status, resize_mask(mask, size) if status == OK else "empty mask"))
        except DecodeError as exc:
            results.append((index, SKIPPED, exc.reason))
        except FileNotFoundError as exc:
            results.append((index, SKIPPED, f"file not found ({exc.filename or exc}); check --root"))
        except Exception as exc:  # noqa: BLE001 - one bad item must not stop a long run
            results.append((index, SKIPPED, f"{type(exc).__name__}: {exc}"))
    return results


def _new_pool(workers: int) -> ProcessPoolExecutor:
    # forkserver/spawn, not fork: the parent may hold torch threads, which fork can deadlock
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method), initializer=_ignore_sigint
    )


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pool and keeps the finished rows."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- the job -----------------------------------------------------------------------------------
class _Job:
    """One preparation: work-state files, the decode loop, and finalize."""

    def __init__(
        self,
        table: ImageTable,
        root: Path | None,
        size: int,
        decode: DecodeSettings,
        target: Path,
        key: str,
        given_root: Path | None = None,
    ):
        self.table, self.root, self.size, self.decode = table, root, size, decode
        self.given_root = given_root if given_root is not None else root
        self.target, self.key = target, key
        self.work = target / WORK
        self.groups = _mask_groups(table)
        self.n, self.m = len(table), len(self.groups)
        self._open_state()

    # state ------------------------------------------------------------------------------------
    def _open_state(self) -> None:
        state = self.work / "state.json"
        if state.exists() and json.loads(state.read_text()).get("key") != self.key:
            log.warning("%s holds work of other inputs; starting over", self.work)
            shutil.rmtree(self.work)
        fresh = not state.exists()
        self.work.mkdir(parents=True, exist_ok=True)
        s = self.size
        stale_meta = self.target / C.META
        if stale_meta.exists():  # a finished cache of other inputs, or a forced rebuild: no longer valid
            stale_meta.unlink()
        if not fresh:
            # a crash inside finalize may have renamed a full work map to its final name: take it back
            for name, final, rows in (("images.u8", C.IMAGES, self.n), ("masks.u8", C.MASKS, self.m)):
                src, dst = self.work / name, self.target / final
                if rows and not src.exists() and dst.exists() and dst.stat().st_size == rows * s * s:
                    os.replace(dst, src)
        self.images = _memmap(self.work / "images.u8", (self.n, s, s), fresh)
        self.masks = _memmap(self.work / "masks.u8", (self.m, s, s), fresh)
        self.status = _memmap(self.work / "status.u8", (self.n + self.m,), fresh)
        self.reasons_path = self.work / "reasons.jsonl"
        if fresh:
            self.reasons_path.write_text("")
            _write_json_atomic(state, {"key": self.key, "n": self.n, "m": self.m, "size": s})
        elif self.n + self.m:
            done = int(np.count_nonzero(self.status))
            log.info("resuming %s: %d of %d items already done", self.target, done, self.n + self.m)

    def _items(self, todo: np.ndarray) -> Iterator[tuple]:
        paths = None if self.table.arrays is not None else self.table.frame["path"].astype(str).tolist()
        for i in todo.tolist():
            if i < self.n:
                if paths is None:
                    yield (i, "array", self.table.arrays[i], None)
                else:
                    yield (i, "image", str(_resolve(paths[i], self.root)), None)
            else:
                rows = self.groups[i - self.n][2].to_dict("records")
                yield (i, "mask", rows, str(self.root) if self.root is not None else None)

    # run --------------------------------------------------------------------------------------
    def run(self, workers: int, progress: bool, cb: Callable[[int, int], None] | None) -> None:
        from tqdm.auto import tqdm

        total = self.n + self.m
        todo = np.flatnonzero(np.asarray(self.status) == PENDING)
        if not len(todo):
            return
        chunks = _chunked(self._items(todo), _CHUNK)
        bar = tqdm(
            total=total,
            initial=total - len(todo),
            unit="img",
            desc=f"prepare {self.table.source}",
            disable=not progress,
            smoothing=0.1,
        )
        done = total - len(todo)
        reasons = open(self.reasons_path, "a")  # noqa: SIM115 - closed in finally
        try:
            with closing(self._results(chunks, workers)) as stream:
                for results in stream:
                    for index, status, value in results:
                        if status == OK:
                            if index < self.n:
                                self.images[index] = value
                            else:
                                self.masks[index - self.n] = value
                        else:
                            reasons.write(
                                json.dumps({"index": index, "status": status, "reason": value}) + "\n"
                            )
                        self.status[index] = status  # after the pixels: a set status means the row is there
                        done += 1
                        if cb is not None:
                            cb(done, total)
                    bar.update(len(results))
                    reasons.flush()
        except BaseException:
            log.warning("preparation of %s interrupted; re-run the same command to resume", self.target)
            raise
        finally:
            bar.close()
            reasons.close()
            for mm in (self.images, self.masks, self.status):
                if isinstance(mm, np.memmap):
                    mm.flush()

    def _results(self, chunks: Iterator[list[tuple]], workers: int) -> Iterator[list[tuple]]:
        if workers <= 1:
            for chunk in chunks:
                yield _work(chunk, self.size, self.decode)
            return
        pool = _new_pool(workers)
        pending: dict[Future, list[tuple]] = {}
        try:
            more = True
            while more or pending:
                while more and len(pending) < workers * 4:  # bounded window: flat memory on 100k images
                    chunk = next(chunks, None)
                    if chunk is None:
                        more = False
                    else:
                        pending[pool.submit(_work, chunk, self.size, self.decode)] = chunk
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                crashed: list[list[tuple]] = []
                for f in finished:
                    chunk = pending.pop(f)
                    try:
                        result = f.result()
                    except BrokenProcessPool:
                        crashed.append(chunk)
                        continue
                    yield result
                if crashed:
                    # a decoder killed its process (segfault, out of memory): every in-flight chunk is
                    # lost; retry their items one at a time to find and skip the culprit
                    crashed += list(pending.values())
                    pending.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _new_pool(workers)
                    for item in (it for c in crashed for it in c):
                        try:
                            result = pool.submit(_work, [item], self.size, self.decode).result()
                        except BrokenProcessPool:
                            log.warning("the decoding process crashed on item %s; skipping it", item[0])
                            result = [
                                (
                                    item[0],
                                    SKIPPED,
                                    "the decoding process crashed on this file (corrupt data?)",
                                )
                            ]
                            pool.shutdown(wait=False, cancel_futures=True)
                            pool = _new_pool(workers)
                        yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # finalize ---------------------------------------------------------------------------------
    def _reasons(self) -> dict[int, str]:
        out = {}
        for line in self.reasons_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[int(rec["index"])] = rec["reason"]
        return out

    def finalize(self, options: dict[str, Any], strict: bool, seconds: float) -> None:
        status = np.asarray(self.status)
        if (status == PENDING).any():
            raise RuntimeError(f"{self.target}: finalize called with pending items")
        reasons = self._reasons()
        table, frame, s = self.table, self.table.frame, self.size
        kept = np.flatnonzero(status[: self.n] == OK)
        skipped = [
            {
                "row": int(i),
                "image_id": str(frame["image_id"].iloc[i]),
                "path": str(frame["path"].iloc[i]),
                "reason": reasons.get(int(i), "unknown"),
            }
            for i in np.flatnonzero(status[: self.n] != OK)
        ]
        mstatus = status[self.n :]
        ids = frame["image_id"].astype(str).to_numpy()
        row_of = dict(zip(ids[kept].tolist(), range(len(kept)), strict=True))
        mkept = [j for j in range(self.m) if mstatus[j] == OK and self.groups[j][0] in row_of]
        report = {
            "source": table.source,
            "key": self.key,
            "size": s,
            "n_total": self.n,
            "n_ok": int(len(kept)),
            "n_skipped": len(skipped),
            "skipped": skipped,
            "masks": {
                "n_total": self.m,
                "n_ok": len(mkept),
                "n_empty": int(np.sum(mstatus == EMPTY)),
                "failed": [
                    {
                        "image_id": self.groups[j][0],
                        "label": self.groups[j][1],
                        "reason": reasons.get(self.n + j),
                    }
                    for j in range(self.m)
                    if mstatus[j] == SKIPPED
                ],
            },
            "seconds_last_run": round(seconds, 2),
            "decode": self.decode.as_dict(),
        }
        _write_json_atomic(self.target / C.REPORT, report)
        if skipped:
            log.warning(
                "%s: %d of %d images skipped (see %s)",
                table.source,
                len(skipped),
                self.n,
                self.target / C.REPORT,
            )
        if self.n and not len(kept):
            raise PrepareError(
                f"none of the {self.n} images of {table.source} could be decoded (first: "
                f"{skipped[0]['path']}: {skipped[0]['reason']}); is --root right? Report: {self.target / C.REPORT}"
            )
        if strict and skipped:
            first = "; ".join(f"{x['path']}: {x['reason']}" for x in skipped[:3])
            raise PrepareError(
                f"--strict: {len(skipped)} image(s) of {table.source} could not be decoded ({first}...). "
                f"Fix or remove them, or run without --strict to skip them. Report: {self.target / C.REPORT}"
            )
        # pixels: the preallocated rows minus the skipped ones
        _compact(self.work / "images.u8", self.target / C.IMAGES, kept, self.n, s, self.images)
        _compact(
            self.work / "masks.u8", self.target / C.MASKS, np.array(mkept, np.int64), self.m, s, self.masks
        )
        # tables
        index = frame.iloc[kept].reset_index(drop=True)
        index.to_csv(self.target / C.INDEX, index=False)
        np.save(self.target / C.LABELS, table.labels[kept].astype(np.float32))
        boxes = table.boxes.assign(image_id=table.boxes["image_id"].astype(str))
        boxes = boxes[boxes["image_id"].isin(row_of)]
        pd.DataFrame(
            {
                "image_id": boxes["image_id"],
                "row": boxes["image_id"].map(row_of).astype("int64"),
                "label": boxes["label"],
                **{c: boxes[c].astype(float) * s for c in "xywh"},
            }
        ).to_csv(self.target / C.BOXES, index=False)
        pd.DataFrame(
            {
                "image_id": [self.groups[j][0] for j in mkept],
                "row": [row_of[self.groups[j][0]] for j in mkept],
                "label": [self.groups[j][1] for j in mkept],
            }
        ).to_csv(self.target / C.MASK_INDEX, index=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "source": table.source,
            "root": str(self.given_root) if self.given_root is not None else "",
            "options": options,
            "size": s,
            "label_names": list(table.label_names),
            "task": table.task,
            "n": int(len(kept)),
            "n_masks": len(mkept),
            "key": self.key,
            "decode": self.decode.as_dict(),
            "resize": RESIZE_METHOD,
            "notes": list(table.notes),
            "complete": True,
        }
        self.images = self.masks = self.status = None  # release the memory maps before removing files
        _write_json_atomic(self.target / C.META, meta)  # its presence means "complete"
        shutil.rmtree(self.work, ignore_errors=True)  # (a leftover is removed on the next reuse)


def _chunked(it: Iterator[tuple], n: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for x in it:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _memmap(path: Path, shape: tuple[int, ...], fresh: bool) -> np.ndarray:
    """A uint8 memory map of ``shape`` (zero-length shapes get a plain array: mmap cannot be empty)."""
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, np.uint8)
    if fresh or not path.exists() or path.stat().st_size != int(np.prod(shape)):
        return np.memmap(path, dtype=np.uint8, mode="w+", shape=shape)
    return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)


def _compact(src: Path, dst: Path, keep: np.ndarray, n: int, s: int, mm: np.ndarray | None) -> None:
    """Write rows ``keep`` of the ``n``-row work map ``src`` to ``dst`` (a rename when all are kept)."""
    if isinstance(mm, np.memmap):
        mm.flush()
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


def _write_json_atomic(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, default=str))

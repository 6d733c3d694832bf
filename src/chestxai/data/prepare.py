"""Decode + resize every image of a dataset once into the uint8 memory-mapped cache of ``cache.py``.

Why a cache: decoding a 1-3 MP PNG/JPEG/DICOM costs 5-150 ms; reading a 224 x 224 uint8 row from a
memory map costs microseconds. Training epochs then never touch the source files.

How, in order (one module per concept):

1. ``read_table`` (or a given :class:`ImageTable`) lists images, labels, boxes and masks; reader
   options are checked against the reader's signature first (:mod:`.reader_options`), and a
   table without rows is refused.
2. :func:`~chestxai.data.cache_key.cache_key` hashes every input that changes the cache bytes.
   The directory is ``<out>/<source>-<size>px-<key[:10]>``; a finished one is reused as is
   (``strict`` still fails if it holds skipped images).
3. The directory is locked (:func:`chestxai.locks.exclusive`) while it is written: a second
   ``prepare`` of the same inputs fails at once, naming the holder, instead of racing it.
4. Work state (:mod:`.work_state`): preallocated rows and a status byte per item; a killed run
   resumes where it stopped and ends byte-identical to an uninterrupted one.
5. Worker processes decode and resize (:mod:`.worker_pool`); one bad or crashing file is
   skipped and listed, never fatal; workers die with a killed parent.
6. The writer (:mod:`.cache_writer`) writes the report, the pixels, the tables and ``meta.json``
   last and atomically: a cache with a ``meta.json`` is whole.

Scale-out (:mod:`.shards`, a layer above these steps and the entry of ``chestxai prepare``):
``shard=(K, N)`` runs steps 4-5 for one share only (an array job each), and ``merge_shards=N``
gathers the N shares into step 6's state: the same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.crashpoints import crash_point
from chestxai.data import cache as C
from chestxai.data.cache_key import FORMAT_VERSION, RESIZE_METHOD, cache_dir_name, cache_key, resolve
from chestxai.data.cache_writer import mask_groups, write_cache, write_report
from chestxai.data.decode import DecodeSettings
from chestxai.data.table import ImageTable
from chestxai.data.work_state import EMPTY, OK, PENDING, SKIPPED, WORK, WorkState
from chestxai.data.worker_pool import decode_stream
from chestxai.locks import LOCK_NAME, LockedError, exclusive

log = logging.getLogger(__name__)

__all__ = [
    "EMPTY",
    "FORMAT_VERSION",
    "OK",
    "PENDING",
    "RESIZE_METHOD",
    "SKIPPED",
    "WORK",
    "PrepareError",
    "cache_key",
    "prepare",
    "summary",
]

_CHUNK = 8  # items per worker task: amortises inter-process overhead, keeps progress smooth


class PrepareError(ValueError):
    """Preparation failed as a whole (strict mode with skipped images, nothing decoded, no rows)."""


@dataclass(frozen=True)
class Plan:
    """What one preparation is about: the table, its key and the cache directory it lands in."""

    table: ImageTable
    root: Path | None  # the root given (recorded in meta.json), not necessarily table.root
    size: int
    decode: DecodeSettings
    options: dict[str, Any]
    key: str
    target: Path

    @property
    def groups(self) -> list:
        return mask_groups(self.table)

    @property
    def base(self) -> Path | None:
        """What relative paths in the table are relative to (the folder its reader reports)."""
        return self.table.root if self.table.root is not None else self.root


def plan(
    source: str | ImageTable,
    root: str | Path | None,
    size: int,
    out: str | Path | None,
    options: dict[str, Any] | None,
    decode: DecodeSettings | None,
) -> Plan:
    """Read the table and work out the cache key and directory (no file is written)."""
    if int(size) < 8:
        raise ValueError(f"size={size} is too small; use e.g. --size 224")
    size = int(size)
    options = dict(options or {})
    decode = decode or DecodeSettings()
    table = _read(source, root, options)
    root_path = Path(root).expanduser() if root is not None else table.root
    if out is None:
        from chestxai.paths import cache_root

        out = cache_root() / "prepared"
    key = cache_key(table, root_path, options, size, decode)
    target = Path(out).expanduser() / cache_dir_name(table.source, size, key)
    return Plan(table, root_path, size, decode, options, key, target)


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
    ``strict`` fails (:class:`PrepareError`) when any image is skipped, also on a reused cache.
    ``on_progress(done, total)`` is called after each item (progress UIs; tests use it to interrupt).
    Raises :class:`~chestxai.locks.LockedError` when another process is writing the same cache.

    One cache prepared by N array jobs: :func:`chestxai.data.shards.prepare_sharded`.
    """
    started = time.perf_counter()
    p = plan(source, root, size, out, options, decode)
    target, key = p.target, p.key
    if not force and finished(target, key):
        return reuse(target, key, strict)
    try:
        with exclusive(target, "prepared cache"):
            if not force and finished(target, key):  # another process finished it meanwhile
                return reuse(target, key, strict, locked=True)
            if force:
                clear(target)
            _build(p, strict, workers, progress, on_progress)
    except LockedError as exc:
        raise LockedError(
            f"{exc}. It is preparing the same inputs: re-run this command when it is done to reuse its cache"
        ) from None
    log.debug("%s (%.1f s)", summary(target), time.perf_counter() - started)
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
    unlisted = report.get("skipped_folders", [])
    if unlisted:
        lines.append(f"not read while listing the images: {len(unlisted)} file(s)/folder(s):")
        lines += [f"  {s['path']}: {s['reason']}" for s in unlisted[:10]]
        if len(unlisted) > 10:
            lines.append(f"  ... and {len(unlisted) - 10} more")
    failed = report.get("masks", {}).get("failed", [])
    if failed:
        lines.append(f"{len(failed)} mask(s) failed to load (see report)")
    return "\n".join(lines)


# --- steps -------------------------------------------------------------------------------------
def _read(source: str | ImageTable, root: str | Path | None, options: dict[str, Any]) -> ImageTable:
    if isinstance(source, ImageTable):
        if options:
            raise ValueError("options are reader options; they cannot apply to an ImageTable you pass in")
        table = source
        where = f"the table {table.source!r} passed in"
    else:
        if root is None:
            raise ValueError(f"prepare({source!r}) needs root= (the folder holding the dataset)")
        from chestxai.data.reader_options import check_reader_options
        from chestxai.data.readers import read_table

        check_reader_options(source, options)
        table = read_table(source, root, **options)
        where = f"--source {source} --root {root}"
    if len(table) == 0:
        raise PrepareError(
            f"{where} lists no images (an empty folder, or a CSV with only a header?); "
            "check --root and the reader options (`chestxai data summary` shows what a reader finds)"
        )
    return table


def finished(target: Path, key: str) -> bool:
    meta = target / C.META
    if not meta.exists():
        return False
    m = json.loads(meta.read_text())
    return bool(m.get("complete")) and m.get("key") == key


def reuse(target: Path, key: str, strict: bool, locked: bool = False) -> Path:
    """A finished cache of the same inputs: check ``strict`` against its report, tidy, return it.

    Reuse takes no lock (many runs may read one cache at once); only removing a leftover work
    folder does, and is skipped while someone else holds the cache.
    """
    log.info("reusing prepared cache %s (same inputs, key %s)", target, key[:10])
    report = json.loads((target / C.REPORT).read_text()) if (target / C.REPORT).exists() else {}
    skipped = report.get("skipped", []) + report.get("skipped_folders", [])
    if strict and skipped:
        raise PrepareError(_strict_message(skipped, report.get("source", target.name), target, reused=True))
    if (target / WORK).exists() and locked:
        shutil.rmtree(target / WORK, ignore_errors=True)
    elif (target / WORK).exists():  # a kill between meta.json and removing the work folder
        try:
            with exclusive(target, "prepared cache"):
                shutil.rmtree(target / WORK, ignore_errors=True)
        except LockedError:
            pass  # someone else holds it (tidying it too, or forcing a rebuild): leave it to them
    return target


def clear(target: Path) -> None:
    """Empty ``target`` for a forced rebuild, keeping the lock file this process holds."""
    for p in target.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _build(
    p: Plan,
    strict: bool,
    workers: int | None,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    started = time.perf_counter()
    groups = p.groups
    state = WorkState(p.target, p.key, len(p.table), len(groups), p.size)
    decode_plan(p, state, groups, workers, p.table.source, progress, on_progress)
    finish(p, state, groups, strict, time.perf_counter() - started)


def decode_plan(
    p: Plan,
    state: WorkState,
    groups: list,
    workers: int | None,
    label: str,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Decode ``state``'s pending items of ``p`` (the whole cache or one shard's span) with
    ``workers`` processes (None: :func:`default_workers`); ``label`` names it on the progress bar."""
    n_workers = default_workers(p.table) if workers is None else int(workers)
    decode_all(
        state, items(p.table, groups, p.base), n_workers, p.size, p.decode, label, progress, on_progress
    )


def finish(p: Plan, state: WorkState, groups: list, strict: bool, seconds: float) -> None:
    """Every item of the whole ``state`` is decoded: write the report, check it, write the cache."""
    table, target = p.table, p.target
    report = write_report(state, table, groups, p.decode, seconds)
    skipped = report["skipped"]
    if skipped:
        log.warning(
            "%s: %d of %d images skipped (see %s)", table.source, len(skipped), state.n, target / C.REPORT
        )
    if state.n and not report["n_ok"]:
        raise PrepareError(
            f"none of the {state.n} images of {table.source} could be decoded (first: "
            f"{skipped[0]['path']}: {skipped[0]['reason']}); is --root right? Report: {target / C.REPORT}"
        )
    if strict and (skipped or report["skipped_folders"]):
        everything = skipped + report["skipped_folders"]
        raise PrepareError(_strict_message(everything, table.source, target, reused=False))
    write_cache(state, table, groups, root=p.root, options=p.options, decode=p.decode)


def decode_all(
    state: WorkState,
    items: Callable[[np.ndarray], Iterator[tuple]],
    workers: int,
    size: int,
    decode: DecodeSettings,
    source: str,
    progress: bool,
    cb: Callable[[int, int], None] | None,
) -> None:
    """Decode every pending item into ``state``; an interruption keeps every row done so far."""
    from tqdm.auto import tqdm

    total = state.n_items
    todo = state.pending()
    if not len(todo):
        return
    done = total - len(todo)
    bar = tqdm(
        total=total, initial=done, unit="img", desc=f"prepare {source}", disable=not progress, smoothing=0.1
    )
    reasons = open(state.reasons_path, "a")  # noqa: SIM115 - closed in finally
    try:
        with closing(decode_stream(_chunked(items(todo), _CHUNK), workers, size, decode)) as stream:
            for results in stream:
                for index, status, value in results:
                    state.put(index, status, value, reasons)
                    crash_point("prepare:after-item")
                    done += 1
                    if cb is not None:
                        cb(done, total)
                bar.update(len(results))
                reasons.flush()
    except BaseException:
        log.warning("preparation of %s interrupted; re-run the same command to resume", state.target)
        raise
    finally:
        bar.close()
        reasons.close()
        state.flush()


def items(table: ImageTable, groups: list, root: Path | None) -> Callable[[np.ndarray], Iterator[tuple]]:
    """``todo`` -> the work items of :func:`chestxai.data.worker_pool.work` for those indices."""
    n = len(table)
    paths = None if table.arrays is not None else table.frame["path"].astype(str).tolist()
    mask_root = str(root) if root is not None else None

    def gen(todo: np.ndarray) -> Iterator[tuple]:
        for i in todo.tolist():
            if i < n:
                if paths is None:
                    yield (i, "array", table.arrays[i], None)
                else:
                    yield (i, "image", str(resolve(paths[i], root)), None)
            else:
                yield (i, "mask", groups[i - n][2].to_dict("records"), mask_root)

    return gen


def _strict_message(skipped: list[dict], source: str, target: Path, reused: bool) -> str:
    first = "; ".join(f"{x.get('path') or x.get('image_id')}: {x['reason']}" for x in skipped[:3])
    where = f"the existing cache {target} (same inputs) skipped" if reused else "could not decode"
    return (
        f"--strict: {where} {len(skipped)} image(s) of {source} ({first}...). "
        f"Fix or remove them, or run without --strict to skip them. Report: {target / C.REPORT}"
    )


def default_workers(table: ImageTable | None = None) -> int:
    # in-memory sources (MedMNIST arrays) only resize: worker processes would cost more in
    # pickling than they save, and spawning them breaks scripts without a __main__ guard
    if table is not None and table.arrays is not None:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _chunked(it: Iterator[tuple], n: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for x in it:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

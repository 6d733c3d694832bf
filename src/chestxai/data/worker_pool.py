"""Crash-tolerant decoding in worker processes: one bad file never stops (or hangs) a long run.

Why each piece:

* **forkserver/spawn, not fork**: the parent may hold torch threads, which fork can deadlock.
* **A bounded window** of chunks in flight: memory stays flat on 100k images.
* **A crashed worker** (a decoder segfault, out of memory) breaks the whole pool and loses every
  in-flight chunk; their items are retried one at a time in a fresh pool, so only the culprit is
  skipped.
* **Workers die with their parent**: a SIGKILLed parent runs no ``finally``, and pool workers
  (children of the forkserver, holding both ends of their task queue) would block forever on an
  empty queue. Each worker watches the parent's pid and exits when it is gone.
* **Workers ignore Ctrl-C**: the parent stops the pool in a ``finally`` and keeps the rows done.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pandas as pd

from chestxai.data.decode import DecodeError, DecodeSettings, decode_image
from chestxai.data.file_kind import MISSING, not_regular
from chestxai.data.resize import resize_mask, resize_unit, to_unit
from chestxai.data.work_state import EMPTY, OK, SKIPPED

log = logging.getLogger(__name__)

CRASHED = "the decoding process crashed on this file (corrupt data?)"
_WATCH_SECONDS = 0.5  # how often a worker checks that its parent still lives


def work(items: list[tuple], size: int, decode: DecodeSettings) -> list[tuple[int, int, Any]]:
    """Decode + resize a chunk. Returns ``(index, status, uint8 array | reason)`` per item.

    An item is ``(index, kind, payload, root)``: kind ``"array"`` (payload an in-memory image),
    ``"image"`` (payload a file path) or ``"mask"`` (payload the mask-table rows of one image+label).
    """
    from chestxai.data.masks import load_mask

    results = []
    for index, kind, payload, root in items:
        try:
            if kind == "array":
                results.append((index, OK, resize_unit(to_unit(payload), size)))
            elif kind == "image":
                # a FIFO or device listed by a manifest would block or never end: never opened
                odd = not_regular(payload)
                if odd and odd != MISSING:
                    results.append((index, SKIPPED, odd))
                    continue
                results.append((index, OK, resize_unit(decode_image(payload, decode), size)))
            else:
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


def decode_stream(
    chunks: Iterator[list[tuple]], workers: int, size: int, decode: DecodeSettings
) -> Iterator[list[tuple]]:
    """Results of :func:`work` for every chunk (in completion order); ``workers <= 1``: in-process."""
    if workers <= 1:
        for chunk in chunks:
            yield work(chunk, size, decode)
        return
    pool = new_pool(workers)
    pending: dict[Future, list[tuple]] = {}
    try:
        more = True
        while more or pending:
            while more and len(pending) < workers * 4:
                chunk = next(chunks, None)
                if chunk is None:
                    more = False
                else:
                    pending[pool.submit(work, chunk, size, decode)] = chunk
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
                crashed += list(pending.values())
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool(workers)
                for item in (it for c in crashed for it in c):
                    try:
                        result = pool.submit(work, [item], size, decode).result()
                    except BrokenProcessPool:
                        log.warning("the decoding process crashed on item %s; skipping it", item[0])
                        result = [(item[0], SKIPPED, CRASHED)]
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = new_pool(workers)
                    yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def new_pool(workers: int) -> ProcessPoolExecutor:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()


def _exit_with_parent(parent_pid: int) -> None:
    while parent_alive(parent_pid):
        time.sleep(_WATCH_SECONDS)
    os._exit(1)  # nothing of ours to flush: results go to the (dead) parent


def parent_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (pid reused): our parent is gone
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): the signal check above is all we have
        return True
    return state not in (b"Z", b"X")

"""A bounded gate around image decoding in the service: at most ``slots`` decodes at once.

Why: a decode's memory is bounded per image by the decoder's budgets (``--max-pixels``,
``--max-decode-mb``), but N concurrent uploads could each take that much (three 8900 x 8900 RGBA
PNGs reached 9.6 GB). The gate bounds the service's decode memory to ``slots`` x one image.
Requests beyond the slots wait (they hold only their temporary upload file, not pixels); when
``max_waiting`` are already waiting a request is refused at once with 503 + Retry-After
(:class:`DecodeBusyError`, a :class:`~chestxai.serve.batching.QueueFullError`).

A slot is held until the decode *thread* returns, not until the request gives up: a request that
times out (504, answered at its deadline) cannot stop its thread, so releasing its slot then would
let the next decodes allocate beside one still running. The thread releases the slot itself (through the event loop);
a slot acquired for a thread that never started is released by the request instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from chestxai.serve.batching import QueueFullError

T = TypeVar("T")


class DecodeBusyError(QueueFullError):
    """Every decode slot is busy and the waiting line is full; retry shortly (503)."""


class DecodeGate:
    def __init__(self, slots: int = 2, max_waiting: int = 256):
        if slots < 1 or max_waiting < 0:
            raise ValueError(f"--max-decodes must be >= 1 (got {slots}) and the waiting line >= 0")
        self.slots = int(slots)
        self.max_waiting = int(max_waiting)
        self.running = 0  # decode threads running now (for /healthz-style checks and tests)
        self.waiting = 0
        self.peak = 0  # most decodes that ever ran at once
        self._count = threading.Lock()
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread once a slot is free; DecodeBusyError when the line is full."""
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:
            self._sem, self._loop = asyncio.Semaphore(self.slots), loop
        sem = self._sem
        if sem.locked() and self.waiting >= self.max_waiting:
            raise DecodeBusyError(
                f"all {self.slots} image decodes are busy and {self.waiting} uploads wait "
                "(the server's --max-decodes and --max-queue); retry in a second"
            )
        self.waiting += 1
        try:
            await sem.acquire()
        finally:
            self.waiting -= 1
        lock = threading.Lock()
        state = {"started": False, "released": False}

        def release() -> None:  # once, whoever is first: the thread at its end or the request
            with lock:
                if state["released"]:
                    return
                state["released"] = True
            with contextlib.suppress(RuntimeError):  # a closed loop (shutdown): nothing waits any more
                loop.call_soon_threadsafe(sem.release)

        def work() -> T:
            with lock:
                if state["released"]:  # the request gave up before the thread started
                    raise asyncio.CancelledError
                state["started"] = True
            with self._count:
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                return fn(*args)
            finally:
                with self._count:
                    self.running -= 1
                release()

        try:
            # abandon_on_cancel: a timed-out request answers 504 at once; its thread keeps the slot
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        finally:
            with lock:
                started = state["started"]
            if not started:
                release()

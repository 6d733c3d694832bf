"""Explanations and uncertainty queue apart from plain predictions, and stop when abandoned.

Why: a TTA request with 200 passes holds the model for seconds; forty of them queued on the
model's lock made every plain prediction behind them time out, and a timed-out request's passes
went on running. Here each model has a :class:`HeavyQueue`: one heavy job runs at a time and at
most ``heavy_queue`` wait (more get 503 + Retry-After at once), while plain predictions keep the
micro-batcher's queue (:mod:`.batching`) and wait at most for the one heavy job running.

A job runs in a worker thread with a ``should_stop`` callback (:mod:`chestxai.uncertainty.cancel`):
when the request is cancelled (its deadline passed, :mod:`.deadline`) the callback says stop and
the sampling loop ends before its next chunk of passes. The queue's slot is given back only
when the thread has really finished, so abandoned work never piles up behind the lock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from chestxai.serve.limits import busy

log = logging.getLogger(__name__)


class HeavyQueue:
    """One running job and at most ``max_waiting`` waiting, per model (used from the event loop)."""

    def __init__(self, name: str, max_waiting: int):
        self.name = name
        self.max_waiting = int(max_waiting)
        self.waiting = 0
        self.running = 0
        self.cancelled = 0  # jobs stopped between passes because their request was abandoned
        self._lock: asyncio.Lock | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args, should_stop=...)`` in a worker thread once the model's heavy slot is free."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        lock = self._lock
        if lock.locked() and self.waiting >= self.max_waiting:
            raise busy(
                f"{self.waiting + 1} explain/uncertainty requests are already running or waiting for "
                f"{self.name} (the server's --heavy-queue); retry in a moment or ask without them"
            )
        self.waiting += 1
        try:
            await lock.acquire()
        finally:
            self.waiting -= 1
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            self.running += 1
            job = loop.run_in_executor(None, functools.partial(fn, *args, should_stop=stop.is_set))
        except BaseException:
            self.running -= 1
            lock.release()
            raise

        def finished(fut: asyncio.Future) -> None:
            self.running -= 1
            lock.release()
            if not fut.cancelled() and fut.exception() is not None and stop.is_set():
                self.cancelled += 1

        job.add_done_callback(finished)
        try:
            return await asyncio.shield(job)  # a cancelled request leaves the thread to stop itself
        finally:
            stop.set()

    def stats(self) -> dict[str, int]:
        return {"running": self.running, "waiting": self.waiting, "cancelled": self.cancelled}

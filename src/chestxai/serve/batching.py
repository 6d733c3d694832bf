"""Micro-batching: concurrent requests share one forward pass, through a bounded queue.

Why: a CNN forward on 32 images costs far less than 32 forwards of one (weights are read once,
matrix products are larger), so under load the service should batch. Each model has one worker
thread that takes the first waiting request, gathers whatever else is queued (up to
``max_batch``; waiting at most ``max_wait_ms`` for more when the queue runs dry), runs one forward
and hands each request its row. One thread also means forwards never overlap each other.

The queue is bounded (``max_queue``): when it is full :meth:`MicroBatcher.submit` raises
:class:`QueueFullError` at once (the service answers 503 with Retry-After) instead of letting
latency grow without limit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """More requests are waiting than the queue holds; retry shortly."""


class MicroBatcher:
    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
        name: str = "model",
    ):
        self.fn = fn
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.queue: queue.Queue = queue.Queue(maxsize=int(max_queue))
        self.name = name
        self.batches = 0  # forwards run (for /healthz and the load test)
        self.items = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"batcher-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        while True:  # fail whatever is still waiting
            try:
                _, fut = self.queue.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(RuntimeError("the service is shutting down"))

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    # --- requests ----------------------------------------------------------------------------
    def submit_nowait(self, item: np.ndarray) -> Future:
        fut: Future = Future()
        try:
            self.queue.put_nowait((item, fut))
        except queue.Full:
            raise QueueFullError(
                f"{self.queue.maxsize} requests are already waiting for {self.name}; retry in a moment"
            ) from None
        return fut

    async def submit(self, item: np.ndarray) -> np.ndarray:
        """One image in, its output row back, batched with whatever else is waiting."""
        return await asyncio.wrap_future(self.submit_nowait(item))

    # --- worker ------------------------------------------------------------------------------
    def _gather(self) -> list[tuple[np.ndarray, Future]]:
        try:
            batch = [self.queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        deadline = time.perf_counter() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(self.queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._gather()
            if not batch:
                continue
            live = [(x, f) for x, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                out = self.fn(np.stack([x for x, _ in live]))
            except Exception as exc:  # noqa: BLE001 - hand the error to every waiting request
                log.exception("forward of %d request(s) failed", len(live))
                for _, f in live:
                    f.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(live)
            for k, (_, f) in enumerate(live):
                f.set_result(out[k])

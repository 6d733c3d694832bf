"""The micro-batcher: concurrent requests share forwards, each gets its own row, the queue is bounded."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from chestxai.serve.batching import MicroBatcher, QueueFullError


def test_waiting_requests_share_one_forward_and_get_their_own_rows():
    sizes: list[int] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True) * 2

    b = MicroBatcher(forward, max_batch=8, max_wait_ms=0, max_queue=64)
    futures = [b.submit_nowait(np.full((2, 2), i, np.float32)) for i in range(20)]  # queued before start
    b.start()
    try:
        got = [f.result(timeout=30) for f in futures]
    finally:
        b.stop()
    assert [float(g[0]) for g in got] == [8.0 * i for i in range(20)]
    assert sizes == [8, 8, 4] and b.batches == 3 and b.items == 20


def test_a_full_queue_is_refused_at_once_and_errors_reach_every_request():
    b = MicroBatcher(lambda x: 1 / 0, max_batch=4, max_queue=2)
    first = [b.submit_nowait(np.zeros(1)) for _ in range(2)]
    with pytest.raises(QueueFullError, match="already waiting"):
        b.submit_nowait(np.zeros(1))
    b.start()
    try:
        for f in first:
            with pytest.raises(ZeroDivisionError):
                f.result(timeout=30)
    finally:
        b.stop()


def test_async_submit_from_many_tasks():
    release = threading.Event()

    def forward(batch):
        release.wait(30)
        return batch + 1

    b = MicroBatcher(forward, max_batch=32, max_wait_ms=1)
    b.start()

    async def main():
        tasks = [asyncio.ensure_future(b.submit(np.array([i]))) for i in range(10)]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(*tasks)

    try:
        out = asyncio.run(main())
    finally:
        b.stop()
    assert [int(o[0]) for o in out] == list(range(1, 11))
    assert b.batches < 10  # the first forward held the rest back, so they were merged

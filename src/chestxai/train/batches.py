"""Which rows each step trains on: shuffled or class-weighted order, sharded across ranks.

Batches are gathered straight from the cache's uint8 memmap (one fancy-index per batch) instead of
a per-item ``Dataset``: with images already decoded and resized, per-item Python overhead would
dominate at small sizes (PneumoniaMNIST is 28 px). The order for an epoch depends only on
``(seed, epoch)``, so a resumed run replays exactly the epochs an uninterrupted run would, and
every rank computes the same order and takes its own slice (what ``DistributedSampler`` does,
extended to weighted draws).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def epoch_order(
    rows: np.ndarray,
    epoch: int,
    seed: int,
    weights: np.ndarray | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> np.ndarray:
    """Rows in training order for ``epoch`` on ``rank`` (equal length on every rank)."""
    gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    n = len(rows)
    if weights is None:
        order = torch.randperm(n, generator=gen).numpy()
    else:
        w = torch.as_tensor(weights, dtype=torch.double)
        order = torch.multinomial(w, n, replacement=True, generator=gen).numpy()
    if world_size > 1:
        per_rank = -(-n // world_size)
        order = np.resize(order, per_rank * world_size)  # pad by wrapping, as DistributedSampler does
        order = order[rank::world_size]
    return rows[order]


def iterate_batches(
    images: np.ndarray, labels: np.ndarray, order: np.ndarray, batch_size: int, drop_last: bool = True
) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """(uint8 images B x H x W, float labels B x L, rows) batches; rows sorted per batch for locality."""
    stop = len(order) - (len(order) % batch_size if drop_last and len(order) >= batch_size else 0)
    for start in range(0, stop, batch_size):
        rows = np.sort(order[start : start + batch_size])
        yield torch.from_numpy(np.ascontiguousarray(images[rows])), torch.from_numpy(labels[rows]), rows

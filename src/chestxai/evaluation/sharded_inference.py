"""Sharded inference for ``evaluate`` under torchrun: each rank scores a block of whole batches,
rank 0 receives every block and goes on alone (thresholds, bootstrap, figures, files).

Why blocks of *whole batches*: rank r then runs exactly some of the batches a one-process run
runs, with the same images in each, so the merged probabilities equal the one-process ones (bit
for bit on the same kind of device; batch composition is what can move float results). Blocks
are concatenated in rank order, which is the rows' order.

Why a callable ``gather``: the process group lives in :mod:`chestxai.train.distributed`, a layer
above evaluation; the command builds :class:`Shards` and evaluation only calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chestxai.crashpoints import crash_point


@dataclass(frozen=True)
class Shards:
    """This process's place among ``world_size`` ranks, and how to hand results to rank 0."""

    rank: int
    world_size: int
    gather: Callable[[Any], list | None]  # every rank's object on rank 0 in rank order, None elsewhere

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def batch_block(n: int, batch_size: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous block of whole batches of ``n`` rows (blocks differ by <= 1 batch)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    n_batches = -(-n // batch_size)
    lo, hi = n_batches * rank // world_size, n_batches * (rank + 1) // world_size
    return slice(lo * batch_size, min(hi * batch_size, n))


def predict_sharded(
    predict: Callable[[np.ndarray], np.ndarray], row_sets: list[np.ndarray], batch_size: int, shards: Shards
) -> list[np.ndarray] | None:
    """``predict(rows)`` for every set of rows, each rank its block of each set; on rank 0 the whole
    arrays in row order, ``None`` on the others (one gather for all sets)."""
    mine = [
        predict(rows[batch_block(len(rows), batch_size, shards.rank, shards.world_size)]) for rows in row_sets
    ]
    crash_point(f"evaluate:rank{shards.rank}-before-gather")  # tests: one rank dies, the job must fail
    gathered = shards.gather(mine)
    if gathered is None:
        return None
    return [np.concatenate([part[i] for part in gathered]) for i in range(len(row_sets))]

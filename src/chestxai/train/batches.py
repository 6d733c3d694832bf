"""Which rows each step trains on, and the batches themselves: the loop's (and users') one data path.

Order: :func:`epoch_order` shuffles (or draws class-weighted, with replacement) the training rows
as a pure function of ``(seed, epoch)``, so a resumed run replays exactly the epochs an
uninterrupted run would; every rank computes the same global order and takes its own slice
(what ``DistributedSampler`` does, extended to weighted draws).

Pixels: :func:`iterate_batches` gathers each batch straight from the cache's uint8 memmap (one
fancy index per batch, :func:`chestxai.data.dataset.gather`) instead of going through a per-item
``Dataset``: with images already decoded and resized, per-item Python overhead would dominate at
small sizes (PneumoniaMNIST is 28 px). Augmentation parameters are keyed by ``(seed, epoch,
draw)`` where ``draw`` is the position in the *global* epoch order, so an image's augmented pixels
do not depend on the batch size, the rank count or the resume point.

:func:`make_loader` wraps the same order and the same pixels in a ``DataLoader`` (for loader
workers, pinned memory, or users' own loops); it yields exactly what :func:`iterate_batches` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from chestxai.data.augment import AugmentConfig
from chestxai.data.cache import PreparedCache
from chestxai.data.dataset import CachedImageDataset, augment_params, collate, gather


def epoch_order(
    rows: np.ndarray,
    epoch: int,
    seed: int,
    weights: np.ndarray | None = None,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, draws)`` in training order for ``epoch`` on ``rank``: equal length on every rank.

    ``weights`` (one per row): draw ``len(rows)`` rows with replacement in proportion to them
    (oversampling rare classes); otherwise a permutation (``shuffle=False``: the rows as given,
    e.g. for a sharded evaluation pass). ``draws`` are the positions in the
    global order (``rank, rank + world_size, ...``); the last ranks wrap around to the start when
    ``len(rows)`` does not divide evenly, as ``DistributedSampler`` pads.
    """
    rows = np.asarray(rows)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    n = len(rows)
    if weights is None:
        order = torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n)
    else:
        if len(weights) != n:
            raise ValueError(f"{len(weights)} sampling weights for {n} rows")
        w = torch.as_tensor(np.asarray(weights), dtype=torch.double)
        order = torch.multinomial(w, n, replacement=True, generator=gen).numpy()
    draws = np.arange(n)
    if world_size > 1 and n:
        per_rank = -(-n // world_size)
        draws = np.resize(draws, per_rank * world_size)[rank::world_size]  # pad by wrapping
    return rows[order[draws]], draws


class Batch(NamedTuple):
    images: torch.Tensor  # uint8 B x H x W, rows ascending (move to the device, then to_unit)
    targets: torch.Tensor  # float32 B x L, NaN = unknown
    rows: np.ndarray  # cache rows
    params: torch.Tensor | None  # B x 7 augmentation parameters, or None without augmentation


def iterate_batches(
    images: np.ndarray,
    labels: np.ndarray,
    order: tuple[np.ndarray, np.ndarray],
    batch_size: int,
    drop_last: bool = True,
    *,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    epoch: int = 0,
) -> Iterator[Batch]:
    """Batches of :func:`epoch_order`'s ``(rows, draws)``; ``drop_last`` drops a short final batch.

    Each batch is sorted by row (locality of the memmap reads); its augmentation parameters come
    from its draws, so sorting, batch size and sharding never change an image's pixels.
    """
    rows, draws = order
    for start in range(0, _stop(len(rows), batch_size, drop_last), batch_size):
        r, d = rows[start : start + batch_size], draws[start : start + batch_size]
        sort = np.argsort(r, kind="stable")
        r, d = r[sort], d[sort]
        x, y = gather(images, labels, r)
        yield Batch(x, y, r, augment_params(augment, seed, epoch, d) if augment is not None else None)


def _stop(n: int, batch_size: int, drop_last: bool) -> int:
    """Where the last batch ends: a short final batch is dropped only when a full one exists."""
    return n - (n % batch_size if drop_last and n >= batch_size else 0)


class EpochBatchSampler(Sampler):
    """``DataLoader`` batch sampler over :func:`epoch_order`: keys ``(epoch, draw, position)``.

    Counts epochs itself (one per pass); resume with :meth:`set_epoch`.
    """

    def __init__(
        self,
        rows: np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        weights: np.ndarray | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        epoch: int = 0,
    ):
        self.rows, self.batch_size, self.seed = np.asarray(rows), int(batch_size), int(seed)
        self.shuffle, self.weights, self.drop_last = shuffle, weights, drop_last
        self.rank, self.world_size, self.epoch = rank, world_size, int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = -(-len(self.rows) // self.world_size)
        return n // self.batch_size if self.drop_last and n >= self.batch_size else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        epoch = self.epoch
        self.epoch += 1
        positions, draws = epoch_order(
            np.arange(len(self.rows)),
            epoch,
            self.seed,
            self.weights,
            self.rank,
            self.world_size,
            self.shuffle,
        )
        for start in range(0, _stop(len(positions), self.batch_size, self.drop_last), self.batch_size):
            p, d = positions[start : start + self.batch_size], draws[start : start + self.batch_size]
            sort = np.argsort(self.rows[p], kind="stable")
            yield [(epoch, int(di), int(pi)) for pi, di in zip(p[sort], d[sort], strict=True)]


def make_loader(
    cache: PreparedCache | str | Path,
    rows: np.ndarray | None = None,
    *,
    batch_size: int = 32,
    augment: bool | AugmentConfig = False,
    seed: int = 0,
    shuffle: bool = False,
    weights: np.ndarray | None = None,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    mean: float | None = None,
    std: float | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A ``DataLoader`` of ``(x, y, rows)`` batches with the training loop's order and pixels.

    ``x`` is float ``B x 1 x S x S`` in [0, 1] (or ``(x - mean) / std``). ``shuffle`` or
    ``weights`` (per row, e.g. :func:`chestxai.data.splits.sample_weights`) pick the order as
    :func:`epoch_order` does; ``rank``/``world_size`` shard it. ``num_workers=0`` is often
    fastest: a batch is one memmap read and one ``grid_sample``.
    """
    dataset = CachedImageDataset(cache, rows, augment=augment, seed=seed, mean=mean, std=std)
    sampler = EpochBatchSampler(
        dataset.rows,
        batch_size,
        seed=seed,
        shuffle=shuffle,
        weights=weights,
        rank=rank,
        world_size=world_size,
        drop_last=drop_last,
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )

"""A torch ``Dataset`` over a prepared cache, and the ``DataLoader`` the training loop uses.

Why it is fast: rows come from the uint8 memory map (no decoding), a whole batch is read with one
fancy index and warped with one ``grid_sample`` (``__getitems__``, which ``DataLoader`` calls with
the batch's keys), and :func:`make_loader`'s collate takes the already-stacked tensors as they are.

Why augmentation is reproducible: each image's random parameters are a pure function of
``(seed, epoch, row)`` (:func:`keyed_uniforms`), so a seed gives the same augmented epoch whatever
the batch size, number of workers or process. The epoch travels with each key: :func:`make_loader`
wraps its sampler in :class:`EpochSampler`, which yields ``(epoch, position)`` keys and counts
epochs itself (resume with ``loader.sampler.set_epoch(k)``). Plain integer keys use
:meth:`CachedImageDataset.set_epoch`.

Where to augment: here (CPU, in the loader) or on the accelerator with
:func:`chestxai.data.augment.augment_batch` after moving a non-augmented batch there. On CPU the
bilinear warp is most of the loading cost (~0.3 ms per 224 px image per core).

Items are ``(image, target, row)``: ``image`` float32 ``1 x S x S`` in [0, 1] (or
``(x - mean) / std`` when given), ``target`` float32 ``L`` with NaN = unknown (mask it in the
loss), ``row`` the cache row (for predictions.csv, boxes and masks).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler, default_collate

from chestxai.data.augment import N_PARAMS, AugmentConfig, apply_params, params_from_uniform
from chestxai.data.cache import PreparedCache

Key = int | tuple[int, int]


class CachedImageDataset(Dataset):
    """Rows ``rows`` of a prepared cache as ``(image, target, row)`` items (see module docstring).

    ``cache``: a :class:`PreparedCache` or its directory. ``rows``: cache rows (default all), e.g.
    ``make_splits(...)["train"]``. ``augment``: ``False``, ``True`` (default
    :class:`AugmentConfig`) or a config. ``seed``: augmentation seed. ``mean``/``std``: optional
    normalisation applied after augmentation.
    """

    def __init__(
        self,
        cache: PreparedCache | str | Path,
        rows: Sequence[int] | np.ndarray | None = None,
        augment: bool | AugmentConfig = False,
        seed: int = 0,
        mean: float | None = None,
        std: float | None = None,
    ):
        cache = cache if isinstance(cache, PreparedCache) else PreparedCache(cache)
        self.path, self.size, self.n_cache = cache.path, cache.size, len(cache)
        self.rows = np.arange(self.n_cache) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= self.n_cache):
            raise IndexError(f"rows must lie in [0, {self.n_cache}) for cache {self.path}")
        self.targets = torch.from_numpy(np.ascontiguousarray(cache.labels[self.rows], dtype=np.float32))
        self.label_names = cache.label_names
        self.augment = AugmentConfig() if augment is True else (augment or None)
        self.seed, self.epoch = int(seed), 0
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.mean, self.std = mean, std
        self._images: np.ndarray | None = None  # opened lazily in each process (see __getstate__)

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain integer keys (``EpochSampler`` keys carry their own)."""
        self.epoch = int(epoch)

    # pickling (DataLoader workers with spawn): ship the path, not the mapped pixels
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            s = self.size
            self._images = np.memmap(
                self.path / "images.u8", dtype=np.uint8, mode="r", shape=(self.n_cache, s, s)
            )
        return self._images

    def _split_key(self, key: Key) -> tuple[int, int]:
        if isinstance(key, tuple):
            return int(key[0]), int(key[1])
        return self.epoch, int(key)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y, rows = self.batch([key])
        return x[0], y[0], int(rows[0])

    def __getitems__(self, keys: list[Key]) -> _Batch:
        x, y, rows = self.batch(keys)
        return _Batch((x, y, rows))

    def batch(self, keys: list[Key]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked ``(B x 1 x S x S images, B x L targets, B rows)`` for ``keys``."""
        epochs, pos = zip(*(self._split_key(k) for k in keys), strict=True) if keys else ((), ())
        pos_arr = np.asarray(pos, dtype=np.int64)
        rows = self.rows[pos_arr]
        order = np.argsort(rows, kind="stable")  # sorted reads are kinder to the page cache
        pixels = np.empty((len(rows), self.size, self.size), np.uint8)
        pixels[order] = self.images[rows[order]]
        x = torch.from_numpy(pixels).unsqueeze(1).float()
        if self.augment is not None and len(rows):
            u = keyed_uniforms(self.seed, np.asarray(epochs, np.int64), rows, N_PARAMS)
            x = apply_params(x, params_from_uniform(torch.from_numpy(u), self.augment), gain=1 / 255)
        else:
            x.div_(255.0)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x, self.targets[pos_arr], torch.from_numpy(rows)


class _Batch(list):
    """What ``__getitems__`` returns: per-item tuples for any collate, plus the stacked tensors."""

    def __init__(self, stacked: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
        x, y, rows = stacked
        super().__init__((x[i], y[i], int(rows[i])) for i in range(len(rows)))
        self.stacked = stacked


def collate(items: list[Any]) -> Any:
    """Collate that passes a :class:`CachedImageDataset` batch through without re-stacking."""
    if isinstance(items, _Batch):
        return items.stacked
    return default_collate(items)


_M64 = (1 << 64) - 1


def _mix(seed: int, epoch: int, row: int) -> int:
    """A 63-bit seed from (seed, epoch, row): splitmix64-style mixing so neighbours decorrelate."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + row * 0x94D049BB133111EB) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return (z ^ (z >> 31)) & (2**63 - 1)


def keyed_uniforms(seed: int, epochs: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """``len(rows) x k`` uniforms in [0, 1), a pure function of ``(seed, epoch, row, column)``.

    Vectorised splitmix64 (a counter-based generator): no per-item generator objects, and an
    image gets the same draw whichever batch, worker or process asks for it.
    """
    with np.errstate(over="ignore"):
        z = (
            np.uint64(seed & _M64) * np.uint64(0x9E3779B97F4A7C15)
            + np.asarray(epochs).astype(np.uint64)[:, None] * np.uint64(0xBF58476D1CE4E5B9)
            + np.asarray(rows).astype(np.uint64)[:, None] * np.uint64(0x94D049BB133111EB)
            + np.arange(1, k + 1, dtype=np.uint64)[None, :] * np.uint64(0xD6E8FEB86659FD93)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) * 2.0**-53).astype(np.float32)


class EpochSampler(Sampler):
    """Wraps a sampler so each key is ``(epoch, position)``; the epoch advances per pass.

    Calls ``set_epoch`` on the wrapped sampler when it has one (``DistributedSampler``), so DDP
    shuffling follows the same epoch counter.
    """

    def __init__(self, base: Sampler | Sequence[int], epoch: int = 0):
        self.base, self.epoch = base, int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self.epoch += 1
        for i in self.base:
            yield (epoch, int(i))


class ShuffleSampler(Sampler):
    """A permutation of ``range(n)`` seeded by ``(seed, epoch)``: resuming at epoch k replays it."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(_mix(self.seed, self.epoch, -1))
        return iter(torch.randperm(self.n, generator=gen).tolist())


def make_loader(
    cache: PreparedCache | str | Path,
    rows: Sequence[int] | np.ndarray | None = None,
    *,
    batch_size: int = 32,
    augment: bool | AugmentConfig = False,
    seed: int = 0,
    shuffle: bool = False,
    sampler: Sampler | None = None,
    num_workers: int = 0,
    mean: float | None = None,
    std: float | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A ``DataLoader`` of :class:`CachedImageDataset` batches ``(x, y, rows)``.

    ``shuffle`` draws a seeded permutation per epoch; ``sampler`` (e.g.
    :func:`chestxai.data.splits.weighted_sampler` or a ``DistributedSampler``) replaces it and
    indexes dataset positions ``0..len(rows)-1``. ``num_workers=0`` is often fastest here: a batch
    is one memmap read and one ``grid_sample``.
    """
    dataset = CachedImageDataset(cache, rows, augment=augment, seed=seed, mean=mean, std=std)
    if sampler is None:
        if shuffle:
            sampler = ShuffleSampler(len(dataset), seed=seed)
        else:
            sampler = SequentialSampler(range(len(dataset)))
    elif shuffle:
        raise ValueError("give shuffle=True or a sampler, not both (the sampler decides the order)")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(sampler),
        num_workers=num_workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )

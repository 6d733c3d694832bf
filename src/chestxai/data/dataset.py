"""The one way training reads pixels: gather rows from the cache, augment them with keyed randomness.

Three small functions, used by the training loop (through :mod:`chestxai.train.batches`) and by
:class:`CachedImageDataset`, the ``Dataset`` offered to users' own loops:

* :func:`gather` reads a batch of rows from the uint8 memory map with one fancy index (rows in
  ascending order: sequential reads are kinder to the page cache), no decoding;
* :func:`augment_params` draws each image's augmentation parameters as a pure function of
  ``(seed, epoch, draw)`` (:func:`keyed_uniforms`), where ``draw`` is the image's position in the
  epoch's global order. No generator state is carried from batch to batch, so the pixels an image
  gets in epoch ``e`` are the same whatever the batch size, the number of loader workers or ranks,
  and wherever a run was resumed. Keying by draw rather than by row gives a row drawn twice in a
  weighted epoch two different augmentations;
* :func:`to_unit` turns the uint8 batch into ``B x 1 x S x S`` floats in [0, 1] and applies the
  parameters with one batched warp (:func:`chestxai.data.augment.apply_params`) on whatever device
  the batch is on (the loop moves uint8 to the accelerator first: 4x less to transfer).

Targets are float32 ``B x L`` with NaN = unknown (the loss masks them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from chestxai.data.augment import N_PARAMS, AugmentConfig, apply_params, params_from_uniform
from chestxai.data.cache import PreparedCache

_M64 = (1 << 64) - 1


def keyed_uniforms(seed: int, epochs: np.ndarray, draws: np.ndarray, k: int) -> np.ndarray:
    """``len(draws) x k`` uniforms in [0, 1), a pure function of ``(seed, epoch, draw, column)``.

    Vectorised splitmix64 (a counter-based generator): no per-item generator objects, and an
    image gets the same draw whichever batch, worker or process asks for it.
    """
    draws = np.asarray(draws)
    epochs = np.broadcast_to(np.asarray(epochs), draws.shape)
    with np.errstate(over="ignore"):
        z = (
            np.uint64(seed & _M64) * np.uint64(0x9E3779B97F4A7C15)
            + epochs.astype(np.uint64)[:, None] * np.uint64(0xBF58476D1CE4E5B9)
            + draws.astype(np.uint64)[:, None] * np.uint64(0x94D049BB133111EB)
            + np.arange(1, k + 1, dtype=np.uint64)[None, :] * np.uint64(0xD6E8FEB86659FD93)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) * 2.0**-53).astype(np.float32)


def augment_params(
    config: AugmentConfig, seed: int, epoch: int | np.ndarray, draws: np.ndarray
) -> torch.Tensor:
    """``len(draws) x 7`` augmentation parameters for these draws of ``epoch`` (see module docstring)."""
    u = keyed_uniforms(int(seed), np.asarray(epoch, dtype=np.int64), np.asarray(draws, np.int64), N_PARAMS)
    return params_from_uniform(torch.from_numpy(u), config)


def gather(images: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 ``B x H x W``, float32 ``B x L`` targets) of cache ``rows``, in the order given.

    Reads in ascending row order whatever order is asked for, then puts the images back in place.
    """
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    pixels = np.empty((len(rows), *images.shape[1:]), np.uint8)
    pixels[order] = images[rows[order]]
    targets = np.ascontiguousarray(labels[rows], dtype=np.float32)
    return torch.from_numpy(pixels), torch.from_numpy(targets)


def to_unit(images: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 ``B x H x W`` (any device) -> float ``B x 1 x H x W`` in [0, 1], augmented by ``params``."""
    x = images.unsqueeze(1).float()
    if params is None or not len(x):
        return x.div_(255.0)
    return apply_params(x, params, gain=1 / 255)  # warping is linear: scale once, inside the fused pass


Key = int | tuple[int, int, int]


class CachedImageDataset(Dataset):
    """Rows of a prepared cache as ``(image, target, row)`` items, for users' own ``DataLoader``.

    Built on :func:`gather`, :func:`augment_params` and :func:`to_unit`, so with the same keys it
    gives the training loop's pixels exactly (:func:`chestxai.train.batches.make_loader` builds
    those keys). A key is a dataset position (augmented as draw = position of epoch
    :meth:`set_epoch`) or ``(epoch, draw, position)``. ``__getitems__`` serves a whole batch with
    one read and one warp; ``DataLoader`` calls it with the batch's keys.

    ``cache``: a :class:`PreparedCache` or its directory. ``rows``: cache rows (default all).
    ``augment``: ``False``, ``True`` (default :class:`AugmentConfig`) or a config. ``seed``:
    augmentation seed. ``mean``/``std``: optional normalisation applied after augmentation.
    Items: ``image`` float32 ``1 x S x S``, ``target`` float32 ``L`` (NaN = unknown), ``row``.
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
        self.labels = np.asarray(cache.labels, dtype=np.float32)
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
        """Epoch used for plain integer keys (``(epoch, draw, position)`` keys carry their own)."""
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

    def _split_key(self, key: Key) -> tuple[int, int, int]:
        if isinstance(key, tuple):
            epoch, draw, pos = key
            return int(epoch), int(draw), int(pos)
        return self.epoch, int(key), int(key)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y, rows = self.batch([key])
        return x[0], y[0], int(rows[0])

    def __getitems__(self, keys: list[Key]) -> _Batch:
        return _Batch(self.batch(keys))

    def batch(self, keys: list[Key]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked ``(B x 1 x S x S images, B x L targets, B rows)`` for ``keys``."""
        split = np.array([self._split_key(k) for k in keys], dtype=np.int64).reshape(-1, 3)
        rows = self.rows[split[:, 2]]
        pixels, targets = gather(self.images, self.labels, rows)
        params = None
        if self.augment is not None:
            params = augment_params(self.augment, self.seed, split[:, 0], split[:, 1])
        x = to_unit(pixels, params)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x, targets, torch.from_numpy(rows)


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

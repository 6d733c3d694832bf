"""Training order and batches: permutation, weighted draws, sharding, keyed augmentation, loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chestxai.data.augment import AugmentConfig
from chestxai.data.cache import PreparedCache
from chestxai.data.dataset import to_unit
from chestxai.train.batches import epoch_order, iterate_batches, make_loader

S = 16
ROWS = np.arange(100, 137)  # 37 rows: does not divide by 2, 3 or 4 ranks


# --- epoch_order -------------------------------------------------------------------------------
def test_shuffle_is_a_permutation_deterministic_per_seed_and_epoch():
    rows, draws = epoch_order(ROWS, epoch=0, seed=1)
    assert sorted(rows) == list(ROWS) and list(draws) == list(range(len(ROWS)))
    again, _ = epoch_order(ROWS, epoch=0, seed=1)
    np.testing.assert_array_equal(rows, again)
    assert not np.array_equal(rows, epoch_order(ROWS, epoch=1, seed=1)[0])
    assert not np.array_equal(rows, epoch_order(ROWS, epoch=0, seed=2)[0])
    assert not np.array_equal(rows, ROWS)


def test_weighted_draws_follow_the_weights_with_replacement():
    rows = np.arange(1000)
    classes = (rows < 100).astype(int)  # 10 % positives
    weights = np.where(classes == 1, 1 / 100, 1 / 900)
    drawn, _ = epoch_order(rows, epoch=3, seed=0, weights=weights)
    assert len(drawn) == 1000 and len(np.unique(drawn)) < 1000  # with replacement
    assert 0.45 < classes[drawn].mean() < 0.55  # each class drawn equally often
    np.testing.assert_array_equal(drawn, epoch_order(rows, epoch=3, seed=0, weights=weights)[0])
    zero = np.where(classes == 1, 1.0, 0.0)
    assert (epoch_order(rows, 0, 0, weights=zero)[0] < 100).all()  # weight 0 is never drawn
    with pytest.raises(ValueError, match="sampling weights"):
        epoch_order(rows, 0, 0, weights=weights[:10])


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_ranks_get_equal_shares_that_cover_the_global_order(world, weighted):
    weights = np.linspace(1, 2, len(ROWS)) if weighted else None
    full, _ = epoch_order(ROWS, 5, 9, weights)
    shards = [epoch_order(ROWS, 5, 9, weights, rank=r, world_size=world) for r in range(world)]
    assert len({len(rows) for rows, _ in shards}) == 1, "every rank the same number of rows"
    assert len(shards[0][0]) == -(-len(ROWS) // world)
    # interleaving the shards back gives the single-process order, padded by wrapping around
    merged = np.empty(len(shards[0][0]) * world, dtype=ROWS.dtype)
    for r, (rows, draws) in enumerate(shards):
        merged[r::world] = rows
        np.testing.assert_array_equal(rows, full[draws])  # a draw is a position in the global order
    np.testing.assert_array_equal(merged[: len(ROWS)], full)
    np.testing.assert_array_equal(merged[len(ROWS) :], full[: len(merged) - len(ROWS)])
    if not weighted:
        assert set(np.concatenate([rows for rows, _ in shards])) == set(ROWS)
    with pytest.raises(ValueError, match="rank"):
        epoch_order(ROWS, 0, 0, rank=world, world_size=world)


# --- batches: keyed augmentation is independent of batch size and rank count -------------------
@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (140, S, S), dtype=np.uint8)


def augmented_by_row(images, batch_size, world, epoch=2, seed=4):
    """{row: augmented pixels} over one epoch on ``world`` ranks with ``batch_size``."""
    labels = np.zeros((len(images), 1), np.float32)
    out = {}
    for rank in range(world):
        order = epoch_order(ROWS, epoch, seed, rank=rank, world_size=world)
        for b in iterate_batches(
            images,
            labels,
            order,
            batch_size,
            drop_last=False,
            augment=AugmentConfig(),
            seed=seed,
            epoch=epoch,
        ):
            assert list(b.rows) == sorted(b.rows) and b.images.dtype == torch.uint8
            for row, x in zip(b.rows, to_unit(b.images, b.params), strict=True):
                out.setdefault(int(row), x)
    return out


def test_augmented_pixels_do_not_depend_on_batch_size_or_ranks(images):
    reference = augmented_by_row(images, 4, 1)
    assert sorted(reference) == list(ROWS)
    for batch_size, world in ((16, 1), (5, 2), (37, 1), (3, 3)):
        other = augmented_by_row(images, batch_size, world)
        assert sorted(other) == list(ROWS)
        for row in ROWS:
            torch.testing.assert_close(other[row], reference[row], rtol=0, atol=0)
    next_epoch = augmented_by_row(images, 4, 1, epoch=3)
    assert not torch.equal(next_epoch[ROWS[0]], reference[ROWS[0]])


def test_drop_last_and_plain_batches(images):
    labels = np.arange(len(images), dtype=np.float32)[:, None]
    order = epoch_order(ROWS, 0, 0)
    kept = list(iterate_batches(images, labels, order, 8, drop_last=True))
    assert [len(b.rows) for b in kept] == [8, 8, 8, 8] and kept[0].params is None
    allb = list(iterate_batches(images, labels, order, 8, drop_last=False))
    assert [len(b.rows) for b in allb] == [8, 8, 8, 8, 5]
    b = allb[0]
    np.testing.assert_array_equal(b.images.numpy(), images[b.rows])
    np.testing.assert_array_equal(b.targets.numpy()[:, 0], b.rows)


# --- make_loader: the same order and pixels in a DataLoader ------------------------------------
@pytest.fixture
def cache(make_tiny_cache, images):
    labels = np.c_[np.arange(len(images)) % 2, np.full(len(images), np.nan)].astype(np.float32)
    return make_tiny_cache(images, labels, ["a", "b"], "multilabel")


def loop_epoch(cache_dir, epoch, batch_size, **kw):
    cache = PreparedCache(cache_dir)
    order = epoch_order(ROWS, epoch, 1, kw.get("weights"))
    batches = iterate_batches(
        cache.images, cache.labels, order, batch_size, False, augment=AugmentConfig(), seed=1, epoch=epoch
    )
    return [(to_unit(b.images, b.params), b.targets, torch.from_numpy(b.rows)) for b in batches]


def same(epoch_a, epoch_b):
    """Batches equal bit for bit (NaN labels compare equal)."""
    pairs = [(a, b) for ba, bb in zip(epoch_a, epoch_b, strict=True) for a, b in zip(ba, bb, strict=True)]
    return all(torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)) for a, b in pairs)


def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def test_loader_yields_the_training_loops_batches(cache):
    loader = make_loader(cache, ROWS, batch_size=8, shuffle=True, augment=True, seed=1)
    e0, e1 = batches(loader), batches(loader)  # the loader counts epochs itself
    assert same(e0, loop_epoch(cache, 0, 8)) and same(e1, loop_epoch(cache, 1, 8))
    x, y, rows = e0[0]
    assert x.shape == (8, 1, S, S) and y.shape == (8, 2) and rows.dtype == torch.int64
    again = make_loader(cache, ROWS, batch_size=8, shuffle=True, augment=True, seed=1)
    again.batch_sampler.set_epoch(1)  # resuming at epoch 1 replays it exactly
    assert same(e1, batches(again))
    weights = np.linspace(1, 3, len(ROWS))
    weighted = make_loader(cache, ROWS, batch_size=8, weights=weights, augment=True, seed=1)
    assert same(batches(weighted), loop_epoch(cache, 0, 8, weights=weights))


def test_loader_workers_give_the_same_batches(cache):
    kw = {"batch_size": 8, "shuffle": True, "augment": True, "seed": 2}
    plain = batches(make_loader(cache, ROWS, **kw))
    workers = batches(make_loader(cache, ROWS, num_workers=2, **kw))
    assert same(plain, workers)


def test_loader_without_shuffle_is_in_row_order_and_shards(cache):
    loader = make_loader(cache, ROWS, batch_size=10)
    assert len(loader) == 4
    assert torch.cat([b[2] for b in loader]).tolist() == list(ROWS)
    shard = make_loader(cache, ROWS, batch_size=10, rank=1, world_size=2, drop_last=True)
    drawn = torch.cat([b[2] for b in shard]).tolist()
    assert len(shard) == 1 and drawn == list(ROWS[1::2][:10])

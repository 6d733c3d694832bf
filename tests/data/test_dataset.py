"""CachedImageDataset, augmentation and make_loader: values, determinism, workers, speed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from chestxai.data.augment import AugmentConfig, apply_params, augment_batch, sample_params
from chestxai.data.dataset import CachedImageDataset, EpochSampler, collate, make_loader
from chestxai.data.splits import weighted_sampler

S = 32


@pytest.fixture
def cache(make_tiny_cache):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, S, S), dtype=np.uint8)
    labels = np.c_[np.arange(40) % 2, np.full(40, np.nan)].astype(np.float32)
    return make_tiny_cache(images, labels, ["a", "b"], "multilabel")


def square(n=1, s=S):
    x = torch.zeros(n, 1, s, s)
    x[:, :, 12:20, 12:20] = 1.0
    return x


# --- dataset -----------------------------------------------------------------------------------
def test_items_without_augmentation_are_the_cached_pixels(cache):
    ds = CachedImageDataset(cache, rows=[5, 2, 9])
    x, y, row = ds[1]
    assert x.shape == (1, S, S) and x.dtype == torch.float32 and row == 2
    np.testing.assert_allclose(x[0].numpy(), ds.images[2] / 255.0, atol=1e-7)
    assert y[0] == 0 and torch.isnan(y[1])  # NaN = unknown is kept for the masked loss
    norm = CachedImageDataset(cache, rows=[2], mean=0.5, std=0.25)[0][0]
    torch.testing.assert_close(norm, (x - 0.5) / 0.25)


def test_bad_rows_and_half_normalisation_are_errors(cache):
    with pytest.raises(IndexError, match="rows must lie"):
        CachedImageDataset(cache, rows=[40])
    with pytest.raises(ValueError, match="both mean and std"):
        CachedImageDataset(cache, mean=0.5)


def test_augmentation_is_seeded_per_epoch_and_row_not_per_batch(cache):
    ds = CachedImageDataset(cache, augment=True, seed=7)
    single = ds[(3, 11)][0]
    in_batch = ds.__getitems__([(3, 0), (3, 11), (3, 5)])[1][0]
    torch.testing.assert_close(single, in_batch)
    assert not torch.equal(single, ds[(4, 11)][0])  # next epoch, new draw
    assert not torch.equal(single, CachedImageDataset(cache, augment=True, seed=8)[(3, 11)][0])
    assert not torch.equal(single, CachedImageDataset(cache)[11][0])
    assert single.min() >= 0 and single.max() <= 1
    ds.set_epoch(3)
    torch.testing.assert_close(ds[11][0], single)  # plain keys use set_epoch


def test_dataset_pickles_without_its_pixels(cache):
    ds = CachedImageDataset(cache)
    _ = ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._images is None
    torch.testing.assert_close(clone[3][0], ds[3][0])


# --- augmentation ------------------------------------------------------------------------------
def test_zero_ranges_are_the_identity():
    x = torch.rand(3, 1, S, S)
    cfg = AugmentConfig(rotate=0, translate=0, scale=(1, 1), brightness=0, contrast=0)
    torch.testing.assert_close(augment_batch(x, cfg, torch.Generator().manual_seed(0)), x)


def test_no_horizontal_flip_by_default():
    params = sample_params(1000, AugmentConfig(), torch.Generator().manual_seed(0))
    assert (params[:, 4] == 1).all()
    flips = sample_params(1000, AugmentConfig(hflip=True), torch.Generator().manual_seed(0))[:, 4]
    assert 400 < (flips == -1).sum() < 600


def test_geometry_moves_content_as_intended():
    x = square()
    # params: angle, tx, ty, scale, flip, brightness, contrast
    shift = apply_params(x, torch.tensor([[0.0, -0.25, 0.0, 1.0, 1.0, 0.0, 1.0]]))  # sample 1/8 width left
    cols = shift[0, 0].sum(0).nonzero().flatten()
    assert cols.min() == 16 and cols.max() == 23  # content moved right by 4 px
    rot = apply_params(x, torch.tensor([[np.pi / 2, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]]))
    torch.testing.assert_close(rot, x, atol=1e-5, rtol=0)  # a centred square is symmetric under 90 deg
    zoom = apply_params(x, torch.tensor([[0.0, 0.0, 0.0, 2.0, 1.0, 0.0, 1.0]]))
    assert zoom.sum().item() == pytest.approx(4 * x.sum().item(), rel=0.05)  # scale 2 = zoom in, area x4
    flip = apply_params(square().roll(5, dims=-1), torch.tensor([[0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 1.0]]))
    torch.testing.assert_close(flip, square().roll(5, dims=-1).flip(-1))


def test_brightness_contrast_and_clamp():
    x = torch.full((1, 1, 4, 4), 0.5)
    x[..., 0, 0] = 0.9
    out = apply_params(x, torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 0.1, 2.0]]))
    mean = x.mean()
    torch.testing.assert_close(out, ((x - mean) * 2 + mean + 0.1).clamp(0, 1))
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(1.2, 1.0))


# --- loader ------------------------------------------------------------------------------------
def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def same(epoch_a, epoch_b):
    """Batches equal bit for bit (NaN labels compare equal)."""
    pairs = [(a, b) for ba, bb in zip(epoch_a, epoch_b, strict=True) for a, b in zip(ba, bb, strict=True)]
    return all(torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)) for a, b in pairs)


def test_loader_batches_shapes_and_seeded_shuffle(cache):
    loader = make_loader(cache, np.arange(10, 40), batch_size=8, shuffle=True, augment=True, seed=1)
    e0, e1 = batches(loader), batches(loader)
    x, y, rows = e0[0]
    assert x.shape == (8, 1, S, S) and y.shape == (8, 2) and rows.dtype == torch.int64
    assert sorted(torch.cat([b[2] for b in e0]).tolist()) == list(range(10, 40))
    assert not torch.equal(e0[0][2], e1[0][2])  # a new order each epoch
    again = make_loader(cache, np.arange(10, 40), batch_size=8, shuffle=True, augment=True, seed=1)
    assert same(e0, batches(again))
    again.sampler.set_epoch(1)  # resuming at epoch 1 replays it exactly
    assert same(e1, batches(again))


def test_loader_workers_give_the_same_batches(cache):
    kw = {"batch_size": 8, "shuffle": True, "augment": True, "seed": 2}
    plain = batches(make_loader(cache, **kw))
    workers = batches(make_loader(cache, num_workers=2, **kw))
    assert same(plain, workers)


def test_loader_with_weighted_sampler_and_plain_dataloader(cache):
    ds_rows = np.arange(40)
    classes = (ds_rows % 4 == 0).astype(int)  # 1 in 4 positive
    loader = make_loader(cache, ds_rows, batch_size=10, sampler=weighted_sampler(classes, num_samples=400))
    drawn = torch.cat([b[2] for b in loader]).numpy()
    assert len(drawn) == 400 and 0.35 < (drawn % 4 == 0).mean() < 0.65
    with pytest.raises(ValueError, match="not both"):
        make_loader(cache, shuffle=True, sampler=weighted_sampler(classes))
    # the dataset also works in a DataLoader built by hand (default collate, int keys)
    x, y, rows = next(iter(DataLoader(CachedImageDataset(cache), batch_size=4)))
    assert x.shape == (4, 1, S, S) and rows.tolist() == [0, 1, 2, 3]
    assert collate([(torch.zeros(1), torch.ones(1), 3)])[2].tolist() == [3]
    assert list(EpochSampler(range(3), epoch=5)) == [(5, 0), (5, 1), (5, 2)]

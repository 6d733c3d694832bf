"""The one pixel path (gather, keyed augmentation, to_unit), CachedImageDataset, and augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from chestxai.data.augment import AugmentConfig, apply_params
from chestxai.data.dataset import (
    CachedImageDataset,
    augment_params,
    collate,
    gather,
    keyed_uniforms,
    to_unit,
)

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


# --- the pixel path ----------------------------------------------------------------------------
def test_gather_returns_rows_in_the_order_asked():
    images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
    labels = np.arange(5, dtype=np.float32)[:, None]
    x, y = gather(images, labels, np.array([3, 0, 4]))
    assert x.dtype == torch.uint8 and x.shape == (3, 2, 2)
    np.testing.assert_array_equal(x.numpy(), images[[3, 0, 4]])
    np.testing.assert_array_equal(y.numpy()[:, 0], [3, 0, 4])


def test_keyed_uniforms_are_a_pure_function_of_the_key():
    u = keyed_uniforms(7, np.array([2, 2, 3]), np.array([5, 6, 5]), 4)
    assert u.shape == (3, 4) and (u >= 0).all() and (u < 1).all()
    alone = keyed_uniforms(7, np.array([2]), np.array([6]), 4)
    np.testing.assert_array_equal(u[1], alone[0])  # the same whatever else is in the batch
    assert not np.array_equal(u[0], u[2])  # another epoch, another draw
    assert not np.array_equal(u[0], keyed_uniforms(8, np.array([2]), np.array([5]), 4)[0])
    big = keyed_uniforms(0, np.zeros(20000, np.int64), np.arange(20000), 7)
    assert abs(big.mean() - 0.5) < 0.01 and abs(np.corrcoef(big[:, 0], big[:, 1])[0, 1]) < 0.03


def test_to_unit_without_params_is_the_cached_pixels_scaled():
    images = torch.randint(0, 256, (3, S, S), dtype=torch.uint8)
    x = to_unit(images)
    assert x.shape == (3, 1, S, S) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, 0], images.float() / 255)
    identity = augment_params(AugmentConfig(0, 0, (1, 1), 0, 0), seed=0, epoch=0, draws=np.arange(3))
    torch.testing.assert_close(to_unit(images, identity), x, atol=1e-6, rtol=0)


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


def test_augmentation_is_keyed_by_epoch_and_draw_not_by_batch(cache):
    ds = CachedImageDataset(cache, augment=True, seed=7)
    single = ds[(3, 11, 11)][0]
    in_batch = ds.__getitems__([(3, 0, 0), (3, 11, 11), (3, 5, 5)])[1][0]
    torch.testing.assert_close(single, in_batch)
    assert not torch.equal(single, ds[(4, 11, 11)][0])  # next epoch, new draw
    assert not torch.equal(single, ds[(3, 12, 11)][0])  # the same row drawn again: another draw
    assert not torch.equal(single, CachedImageDataset(cache, augment=True, seed=8)[(3, 11, 11)][0])
    assert not torch.equal(single, CachedImageDataset(cache)[11][0])
    assert single.min() >= 0 and single.max() <= 1
    ds.set_epoch(3)
    torch.testing.assert_close(ds[11][0], single)  # plain keys: draw = position, epoch from set_epoch


def test_dataset_pickles_without_its_pixels(cache):
    ds = CachedImageDataset(cache)
    _ = ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._images is None
    torch.testing.assert_close(clone[3][0], ds[3][0])


def test_dataset_in_a_hand_built_dataloader(cache):
    x, y, rows = next(iter(DataLoader(CachedImageDataset(cache), batch_size=4)))
    assert x.shape == (4, 1, S, S) and rows.tolist() == [0, 1, 2, 3]
    assert collate([(torch.zeros(1), torch.ones(1), 3)])[2].tolist() == [3]


# --- augmentation ------------------------------------------------------------------------------
def test_zero_ranges_are_the_identity():
    x = torch.rand(3, 1, S, S)
    cfg = AugmentConfig(rotate=0, translate=0, scale=(1, 1), brightness=0, contrast=0)
    torch.testing.assert_close(apply_params(x, augment_params(cfg, 0, 0, np.arange(3))), x)


def test_no_horizontal_flip_by_default():
    params = augment_params(AugmentConfig(), 0, 0, np.arange(1000))
    assert (params[:, 4] == 1).all()
    flips = augment_params(AugmentConfig(hflip=True), 0, 0, np.arange(1000))[:, 4]
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

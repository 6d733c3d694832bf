"""The image pool of CycleGAN: new images until full, then a past image with probability 0.5."""

from __future__ import annotations

import torch

from chestxai.synth.pool import POOL_SIZE, ImagePool


def image(value: float) -> torch.Tensor:
    return torch.full((1, 1, 4, 4), float(value))


def test_before_it_is_full_the_pool_returns_the_new_image():
    pool = ImagePool(POOL_SIZE, seed=0)
    for i in range(POOL_SIZE):
        assert torch.equal(pool.query(image(i)), image(i))
    assert len(pool.images) == POOL_SIZE == 50


def test_once_full_a_past_image_comes_back_with_probability_one_half():
    """2000 draws: the share of past images is 0.5 within 0.05 (4.5 binomial standard deviations,
    sd = sqrt(0.25 / 2000) = 0.011), and every past image is one that went in earlier."""
    pool = ImagePool(POOL_SIZE, seed=1)
    for i in range(POOL_SIZE):
        pool.query(image(i))
    draws, past = 2000, 0
    for i in range(POOL_SIZE, POOL_SIZE + draws):
        got = pool.query(image(i))[0, 0, 0, 0].item()
        if got != i:
            past += 1
            assert got < i  # an image stored before, never an invented one
    assert abs(past / draws - 0.5) < 0.05
    assert len(pool.images) == POOL_SIZE


def test_a_returned_past_image_is_replaced_by_the_new_one():
    pool = ImagePool(2, seed=3)
    pool.query(torch.cat([image(0), image(1)]))
    for i in range(2, 40):
        got = pool.query(image(i))[0, 0, 0, 0].item()
        stored = sorted(x[0, 0, 0].item() for x in pool.images)
        assert i in stored or got == i  # swapped in, or returned itself
        assert got not in stored or got == i


def test_batches_keep_their_shape_and_the_pool_is_seeded_and_resumable():
    a, b = ImagePool(5, seed=7), ImagePool(5, seed=7)
    batches = [torch.randn(3, 1, 4, 4) for _ in range(6)]
    for x in batches[:3]:
        assert a.query(x).shape == x.shape
        b.query(x)
    c = ImagePool(5, seed=99)
    c.load_state_dict(a.state_dict())
    for x in batches[3:]:
        out_a, out_b, out_c = a.query(x), b.query(x), c.query(x)
        assert torch.equal(out_a, out_b) and torch.equal(out_a, out_c)


def test_size_zero_turns_the_pool_off():
    x = torch.randn(4, 1, 4, 4)
    assert torch.equal(ImagePool(0).query(x), x)

"""The published CycleGAN networks at 1 channel: shapes, ranges, valid sizes, structure, init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from chestxai.synth.networks import (
    PatchDiscriminator,
    ResidualBlock,
    ResnetGenerator,
    blocks_for_size,
    check_size,
    patch_map_size,
)

# valid sides: multiples of 4 from 32 px; 36 is a valid size that is neither a power of two nor a
# multiple of 8 (the generator's two stride-2 steps need only 4)
SIZES = (32, 36, 64)


@pytest.mark.parametrize("size", SIZES)
def test_generator_keeps_size_and_one_channel_and_stays_in_range(size):
    torch.manual_seed(0)
    net = ResnetGenerator(channels=1, n_blocks=blocks_for_size(size), ngf=4)
    x = torch.rand(2, 1, size, size) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, size, size)
    assert y.min() >= -1 and y.max() <= 1
    assert y.std() > 0  # not a constant image


@pytest.mark.parametrize(("size", "side"), [(32, 2), (36, 2), (64, 6), (256, 30)])
def test_discriminator_gives_one_score_per_patch(size, side):
    net = PatchDiscriminator(channels=1, ndf=4, n_layers=3)
    with torch.no_grad():
        out = net(torch.zeros(3, 1, size, size))
    assert out.shape == (3, 1, side, side)
    assert patch_map_size(size) == side  # 256 px -> the paper's 30 x 30 map of 70 x 70 patches


@pytest.mark.parametrize("size", [30, 34, 28, 16, 0])
def test_invalid_sizes_are_refused_with_the_rule(size):
    with pytest.raises(ValueError, match="multiple of 4"):
        check_size(size)


def test_generator_refuses_a_side_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(1, 1, ngf=2)(torch.zeros(1, 1, 34, 34))


def test_residual_blocks_by_size_follow_the_paper():
    assert [blocks_for_size(s) for s in (32, 64, 128, 200, 255, 256, 512)] == [6, 6, 6, 6, 6, 9, 9]


def test_published_structure_and_initialisation():
    torch.manual_seed(0)
    g = ResnetGenerator(channels=1, n_blocks=9)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c7s1-64, d128, d256, 9 x R256 (two 3x3 each), u128, u64, c7s1-1
    assert [c.out_channels for c in convs] == [64, 128, 256, *([256] * 18), 128, 64, 1]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert sum(isinstance(m, ResidualBlock) for m in g.modules()) == 9
    assert isinstance(g.model[-1], nn.Tanh)
    assert isinstance(g.model[0], nn.ReflectionPad2d)  # reflection padding, not zeros
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(n.affine or n.track_running_stats for n in norms)
    big = convs[5].weight
    assert abs(big.std().item() - 0.02) < 0.002 and abs(big.mean().item()) < 0.002
    assert all(torch.count_nonzero(c.bias) == 0 for c in convs)
    d = PatchDiscriminator(channels=1)
    dconvs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in dconvs] == [64, 128, 256, 512, 1]
    assert [c.stride for c in dconvs] == [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]
    leaky = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 4 and all(m.negative_slope == 0.2 for m in leaky)
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in d.model[:2])  # no norm on the first layer

"""CycleGAN's networks, 1 channel in and out: a ResNet generator and a 70x70 PatchGAN critic.

As published: Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017 (appendix 7.2), with the defaults of the
authors' reference implementation (pytorch-CycleGAN-and-pix2pix): ``ngf = ndf = 64``, instance
normalisation without affine parameters, no dropout, reflection padding, convolution biases on,
weights drawn from N(0, 0.02) and biases 0. This is the one place the project writes model code
by hand (no maintained library ships CycleGAN), so it stays this small.

Generator (``c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-1``, then tanh): images in [-1, 1].
``n`` follows the paper: 9 residual blocks for 256 px and larger, 6 below. The paper trains 6
blocks at 128 px and 9 at 256 px and gives no rule in between; we switch at 256 px, so 128 and
256 px run exactly the paper's configurations and sizes in between the cheaper one
(:func:`blocks_for_size`; ``--blocks`` overrides it).

Valid sizes: the generator needs a side divisible by 4 (two stride-2 downsamplings and two
stride-2 transposed convolutions give the input size back only then) and at least 8 px; the
discriminator (three stride-2 4x4 convolutions, then two stride-1 4x4 convolutions) needs at
least 24 px for a 1x1 patch map. Training therefore takes sides that are multiples of 4 from 32
px (:func:`check_size`). A 256 px input gives a 30x30 map of 70x70 px patches.
"""

from __future__ import annotations

import torch
from torch import nn

MIN_SIZE = 32  # smallest training side: the discriminator still has a 2x2 patch map


def blocks_for_size(size: int) -> int:
    """Residual blocks of the generator for ``size`` px images: 9 from 256 px, 6 below (module doc)."""
    return 9 if int(size) >= 256 else 6


def check_size(size: int, what: str = "--size") -> int:
    """``size`` if CycleGAN can train at it (a multiple of 4, >= 32 px), else a ValueError saying why."""
    size = int(size)
    if size < MIN_SIZE or size % 4:
        raise ValueError(
            f"{what} {size}: the CycleGAN networks need a multiple of 4 of at least {MIN_SIZE} px "
            f"(e.g. 64, 128, 256); prepare the images at such a size"
        )
    return size


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The reference initialisation: conv weights ~ N(0, std), biases 0 (instance norm has no weights)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm; ``x + block(x)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Image -> image of the same size, both in [-1, 1] (``tanh``); ``channels`` in and out."""

    def __init__(self, channels: int = 1, n_blocks: int = 9, ngf: int = 64):
        super().__init__()
        if n_blocks < 0 or ngf < 1 or channels < 1:
            raise ValueError(
                f"ResnetGenerator needs channels >= 1, ngf >= 1, n_blocks >= 0; got {channels}, {ngf}, {n_blocks}"
            )
        self.config = {"channels": int(channels), "n_blocks": int(n_blocks), "ngf": int(ngf)}
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7),
            _norm(ngf),
            nn.ReLU(inplace=True),
        ]
        width = ngf
        for _ in range(2):  # d128, d256: stride-2 3x3 convolutions
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
                _norm(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(n_blocks)]
        for _ in range(2):  # u128, u64: fractionally strided 3x3 convolutions
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                _norm(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 4 or w % 4 or min(h, w) < 8:
            raise ValueError(
                f"the generator needs image sides divisible by 4 and >= 8 px, got {h}x{w} (see chestxai.synth.networks)"
            )
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (``n_layers=3``): one real/fake logit per overlapping 70x70 patch (no sigmoid:
    the LSGAN loss takes raw scores)."""

    def __init__(self, channels: int = 1, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        if ndf < 1 or n_layers < 1 or channels < 1:
            raise ValueError(
                f"PatchDiscriminator needs channels, ndf, n_layers >= 1; got {channels}, {ndf}, {n_layers}"
            )
        self.config = {"channels": int(channels), "ndf": int(ndf), "n_layers": int(n_layers)}
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for n in range(1, n_layers + 1):  # C128, C256 at stride 2, then C512 at stride 1
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(width, out, 4, stride=stride, padding=1),
                _norm(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def patch_map_size(size: int, n_layers: int = 3) -> int:
    """Side of the discriminator's output map for a ``size`` px input (30 for 256 px)."""
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    return size - 2  # the two stride-1 4x4 convolutions, padding 1

"""ViT tokens -> a spatial map, derived from the model's own patch grid (nothing hard-coded).

pytorch-grad-cam computes CAMs on ``B x C x H x W`` activations; a ViT block outputs
``B x N x C`` tokens, ``N = prefix tokens (class, registers) + grid_h * grid_w``. The library
takes a ``reshape_transform`` for exactly this; its bundled ``vit_reshape_transform`` assumes a
14 x 14 grid and one class token, which is wrong for other input sizes and for models with
register tokens, so the grid and prefix length are read from the backbone instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TokenGridReshape:
    """Drop ``num_prefix_tokens`` leading tokens and fold the rest into a ``height x width`` grid."""

    height: int
    width: int
    num_prefix_tokens: int

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3:
            raise ValueError(f"expected ViT tokens B x N x C, got shape {tuple(tokens.shape)}")
        b, n, c = tokens.shape
        expected = self.num_prefix_tokens + self.height * self.width
        if n != expected:
            raise ValueError(
                f"got {n} tokens but the patch grid {self.height}x{self.width} plus {self.num_prefix_tokens} "
                f"prefix tokens makes {expected}: explain at the input size the model was built for "
                f"(the checkpoint's preprocess size)"
            )
        grid = tokens[:, self.num_prefix_tokens :, :].reshape(b, self.height, self.width, c)
        return grid.permute(0, 3, 1, 2)


def token_reshape_for(backbone: nn.Module) -> TokenGridReshape:
    """The reshape for a timm ViT: ``patch_embed.grid_size`` and ``num_prefix_tokens``."""
    patch_embed = getattr(backbone, "patch_embed", None)
    grid = getattr(patch_embed, "grid_size", None)
    if grid is None:
        raise ValueError(
            f"{type(backbone).__name__} has no patch_embed.grid_size, so its tokens cannot be folded into a "
            f"spatial map; explain a CNN, or a timm ViT built with a fixed img_size"
        )
    prefix = int(
        getattr(backbone, "num_prefix_tokens", 1 if getattr(backbone, "cls_token", None) is not None else 0)
    )
    return TokenGridReshape(int(grid[0]), int(grid[1]), prefix)

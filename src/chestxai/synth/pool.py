"""The image pool (Shrivastava et al. 2017, as CycleGAN uses it): the discriminator sees a
history of generated images, not only the latest, which damps the oscillation of GAN training.

Per image of a batch: until the pool holds ``size`` images, the new image is stored and returned;
once full, with probability 0.5 a random stored image is returned and the new one takes its
place, otherwise the new image is returned. Draws come from the pool's own seeded generator,
whose state (with the stored images) is part of ``last.pt``, so a resumed run draws what an
uninterrupted one would have.
"""

from __future__ import annotations

from typing import Any

import torch

POOL_SIZE = 50


class ImagePool:
    def __init__(self, size: int = POOL_SIZE, seed: int = 0):
        if size < 0:
            raise ValueError(f"image pool size must be >= 0 (0 = off), got {size}")
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(int(seed))

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch the same shape as ``images`` (detached), mixing in past images once full."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator).item())
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """Tensors only (``weights_only`` loads it): the stored images on the CPU and the generator."""
        return {
            "size": self.size,
            "images": [x.cpu() for x in self.images],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [x.to(device) for x in state["images"]]
        self.generator.set_state(state["generator"])

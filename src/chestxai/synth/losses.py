"""CycleGAN's objective (Zhu et al. 2017, eq. 1-3 with the least-squares GAN of Mao et al. 2017).

- adversarial, LSGAN: the discriminator minimises ``((D(real) - 1)^2 + D(fake)^2) / 2``, the
  generator ``(D(G(x)) - 1)^2`` (means over the patch map and batch); least squares instead of
  the log loss because it trains more stably (the paper's section 4 choice);
- cycle: ``lambda * |F(G(x)) - x|_1`` per direction, lambda 10;
- identity: ``0.5 * lambda * |G(y) - y|_1`` per direction (the reference's ``lambda_identity``
  0.5 times the cycle weight), which keeps a generator from changing images already in its
  target domain: on X-rays it preserves the overall intensity and anatomy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LAMBDA_CYCLE = 10.0
IDENTITY_WEIGHT = 0.5  # times LAMBDA_CYCLE


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Mean squared distance of the discriminator's scores to 1 (``real``) or 0 (fake)."""
    scores = scores.float()
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.mse_loss(scores, target)


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``(LSGAN(real, 1) + LSGAN(fake, 0)) / 2``: halved, as the reference does, so D learns slower than G."""
    return 0.5 * (lsgan_loss(real_scores, True) + lsgan_loss(fake_scores, False))


def cycle_loss(
    reconstructed: torch.Tensor, original: torch.Tensor, weight: float = LAMBDA_CYCLE
) -> torch.Tensor:
    """``weight * mean |F(G(x)) - x|``."""
    return weight * F.l1_loss(reconstructed.float(), original.float())


def identity_loss(
    same: torch.Tensor, original: torch.Tensor, weight: float = IDENTITY_WEIGHT * LAMBDA_CYCLE
) -> torch.Tensor:
    """``weight * mean |G(y) - y|`` (weight 0.5 x the cycle weight by default; 0 turns it off)."""
    return weight * F.l1_loss(same.float(), original.float())

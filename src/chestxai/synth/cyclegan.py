"""The CycleGAN training step: two generators, two discriminators, two Adam optimisers, two pools.

One :meth:`CycleGAN.step` is the reference implementation's ``optimize_parameters``: translate
both ways and back, update both generators on adversarial + cycle + identity losses with the
discriminators frozen, then update both discriminators on real images against pooled fakes.
Naming: ``a2b`` maps domain A to B; discriminator ``b`` tells real B from translated A (the
reference's ``G_A``/``D_A``). The loop (:mod:`chestxai.synth.loop`) and the throughput benchmark
call the same step, so the benchmark's ceiling is this code on random tensors.

AMP: float16 autocast with a GradScaler on CUDA (one scaler, both optimisers, one ``update`` per
step as torch documents for several optimisers); bfloat16 autocast without a scaler on CPU when
asked. Losses are computed in float32.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from chestxai.devices import choose_precision
from chestxai.synth.losses import cycle_loss, discriminator_loss, identity_loss, lsgan_loss
from chestxai.synth.networks import PatchDiscriminator, ResnetGenerator
from chestxai.synth.pool import ImagePool

LOSS_NAMES = ("g_adv", "cycle", "identity", "d")


class CycleGAN:
    def __init__(
        self,
        *,
        n_blocks: int,
        ngf: int = 64,
        ndf: int = 64,
        d_layers: int = 3,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        seed: int = 0,
        device: torch.device | str = "cpu",
        precision: str = "float32",
    ):
        self.device = torch.device(device)
        torch.manual_seed(seed)  # the N(0, 0.02) initialisation is the run's seed's
        self.g = {d: ResnetGenerator(1, n_blocks, ngf).to(self.device) for d in ("a2b", "b2a")}
        self.d = {d: PatchDiscriminator(1, ndf, d_layers).to(self.device) for d in ("a", "b")}
        g_params = itertools.chain(*(net.parameters() for net in self.g.values()))
        d_params = itertools.chain(*(net.parameters() for net in self.d.values()))
        self.opt_g = torch.optim.Adam(g_params, lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(d_params, lr=lr, betas=betas)
        self.pools = {d: ImagePool(pool_size, seed * 2 + i + 1) for i, d in enumerate(("a", "b"))}
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_identity = float(lambda_identity)
        # float32, bfloat16 or float16 (+ GradScaler): chosen by devices.choose_precision from --amp
        self.amp = precision != "float32"
        self.amp_dtype = getattr(torch, precision)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=precision == "float16" and self.device.type == "cuda"
        )

    @classmethod
    def from_settings(cls, settings: Any, size: int, device: torch.device) -> CycleGAN:
        """Built from :class:`~chestxai.synth.settings.SynthSettings` for ``size`` px images."""
        # the same decision as training's: bfloat16 only where the device has it natively, never an
        # emulated bfloat16 that runs ~10x slower; --amp where it is not supported is a warning
        precision = choose_precision(settings.amp, device, flag="--amp")
        return cls(
            n_blocks=settings.blocks(size),
            ngf=settings.ngf,
            ndf=settings.ndf,
            d_layers=settings.d_layers,
            lr=settings.lr,
            betas=(settings.beta1, settings.beta2),
            lambda_cycle=settings.lambda_cycle,
            lambda_identity=settings.lambda_identity,
            pool_size=settings.pool_size,
            seed=settings.seed,
            device=device,
            precision=precision.name,
        )

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _freeze_d(self, frozen: bool) -> None:
        for net in self.d.values():
            for p in net.parameters():
                p.requires_grad_(not frozen)

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch of each domain (N x 1 x H x W in [-1, 1]); returns the
        four losses as detached scalars (no device sync): g_adv (both generators' LSGAN terms),
        cycle and identity (weighted, both directions), d (both discriminators, each halved)."""
        g_ab, g_ba, d_a, d_b = self.g["a2b"], self.g["b2a"], self.d["a"], self.d["b"]
        weight_idt = self.lambda_cycle * self.lambda_identity
        # ---- generators: discriminators frozen, so G's backward leaves their gradients alone
        self._freeze_d(True)
        with self._autocast():
            fake_b, fake_a = g_ab(real_a), g_ba(real_b)
            rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
            g_adv = lsgan_loss(d_b(fake_b), True) + lsgan_loss(d_a(fake_a), True)
            if weight_idt > 0:
                idt = identity_loss(g_ab(real_b), real_b, weight_idt) + identity_loss(
                    g_ba(real_a), real_a, weight_idt
                )
            else:
                idt = torch.zeros((), device=real_a.device)
        cyc = cycle_loss(rec_a, real_a, self.lambda_cycle) + cycle_loss(rec_b, real_b, self.lambda_cycle)
        loss_g = g_adv + cyc + idt
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        # ---- discriminators: real against a pooled (past or present) fake
        self._freeze_d(False)
        pooled_b = self.pools["b"].query(fake_b.float())
        pooled_a = self.pools["a"].query(fake_a.float())
        with self._autocast():
            loss_d = discriminator_loss(d_b(real_b), d_b(pooled_b)) + discriminator_loss(
                d_a(real_a), d_a(pooled_a)
            )
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        return {
            "g_adv": g_adv.detach(),
            "cycle": cyc.detach(),
            "identity": idt.detach(),
            "d": loss_d.detach(),
        }

    # ---- last.pt -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the generators (``checkpoint.pt`` carries those): tensors and plain types."""
        cpu = lambda net: {k: v.detach().cpu() for k, v in net.state_dict().items()}  # noqa: E731
        return {
            "d_a": cpu(self.d["a"]),
            "d_b": cpu(self.d["b"]),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pool_a": self.pools["a"].state_dict(),
            "pool_b": self.pools["b"].state_dict(),
        }

    def load_state_dict(self, ckpt: dict[str, Any], state: dict[str, Any]) -> None:
        """Restore from a ``last.pt``: ``ckpt`` holds the generators, ``state`` its ``train_state``."""
        self.g["a2b"].load_state_dict(ckpt["a2b"])
        self.g["b2a"].load_state_dict(ckpt["b2a"])
        self.d["a"].load_state_dict(state["d_a"])
        self.d["b"].load_state_dict(state["d_b"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])
        self.pools["a"].load_state_dict(state["pool_a"], self.device)
        self.pools["b"].load_state_dict(state["pool_b"], self.device)

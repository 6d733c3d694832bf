"""The synthesis config: what ``chestxai synth train`` runs, validated before any data is read.

Defaults are the paper's and the reference implementation's (Zhu et al. 2017): 64 generator and
discriminator filters, residual blocks by image size, a 3-layer PatchGAN, Adam(2e-4, 0.5, 0.999),
batch 1, 200 epochs of which the second half decays the learning rate linearly towards 0, cycle
weight 10, identity weight 0.5 x cycle, a pool of 50 past fakes. Smaller ``ngf``/``ndf`` make a
CPU run or a test affordable. Every number is range-checked here, with the flag it comes from.

``config.yaml`` of a run is :meth:`SynthSettings.to_dict` (plus ``kind`` and the environment);
``--resume`` rebuilds the settings from it (:meth:`SynthSettings.from_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chestxai.checks import check_device, check_keys, check_numbers, check_run_name
from chestxai.config import MAX_SIZE, MAX_WORKERS
from chestxai.synth.domains import parse_domain
from chestxai.synth.networks import blocks_for_size, check_size

KIND = "cyclegan"
AMP_CHOICES = ("auto", "on", "off")
#: what a resumed run may not change (the networks, the data they learn from, the random streams)
FIXED_ON_RESUME = (
    "source",
    "source_b",
    "domain_a",
    "domain_b",
    "size",
    "ngf",
    "ndf",
    "n_blocks",
    "d_layers",
    "pool_size",
    "seed",
)

# field -> (check, valid range as text, flag)
RULES: dict[str, tuple[Any, str, str]] = {
    "size": (lambda v: v == 0 or 32 <= v <= MAX_SIZE, f"0 (the cache's) or in [32, {MAX_SIZE}]", "--size"),
    "epochs": (lambda v: 1 <= v <= 100_000, "in [1, 100000]", "--epochs"),
    "decay_epochs": (lambda v: v >= -1, ">= -1 (-1 = half of --epochs)", "--decay-epochs"),
    "max_steps": (lambda v: v >= 0, ">= 0 (0 = full epoch)", "--max-steps"),
    "batch_size": (lambda v: 1 <= v <= 65_536, "in [1, 65536]", "--batch-size"),
    "lr": (lambda v: 0 < v <= 1, "in (0, 1]", "--lr"),
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)", "--beta1"),
    "beta2": (lambda v: 0 <= v < 1, "in [0, 1)", "--beta2"),
    "lambda_cycle": (lambda v: 0 <= v <= 1000, "in [0, 1000]", "--lambda-cycle"),
    "lambda_identity": (lambda v: 0 <= v <= 100, "in [0, 100] (times the cycle weight)", "--lambda-identity"),
    "pool_size": (lambda v: 0 <= v <= 10_000, "in [0, 10000] (0 = no pool)", "--pool-size"),
    "ngf": (lambda v: 1 <= v <= 1024, "in [1, 1024]", "--ngf"),
    "ndf": (lambda v: 1 <= v <= 1024, "in [1, 1024]", "--ndf"),
    "n_blocks": (lambda v: 0 <= v <= 64, "in [0, 64] (0 = by size: 9 from 256 px, else 6)", "--blocks"),
    "d_layers": (lambda v: 1 <= v <= 6, "in [1, 6]", "--d-layers"),
    "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32)", "--seed"),
    "threads": (lambda v: 0 <= v <= MAX_WORKERS, f"in [0, {MAX_WORKERS}] (0 = torch's default)", "--threads"),
    "samples": (lambda v: 1 <= v <= 64, "in [1, 64]", "--samples"),
    "val_fraction": (lambda v: 0 <= v < 1, "in [0, 1)", "--val-fraction"),
    "test_fraction": (lambda v: 0 <= v < 1, "in [0, 1)", "--test-fraction"),
}


@dataclass
class SynthSettings:
    name: str = "synth"
    run_dir: str = ""  # "" = runs/<name>
    # ---- data: domain A (and B unless a second source is given) --------------------------------
    source: str = "medmnist"
    root: str = ""  # "" = the chestxai cache (MedMNIST downloads there)
    options: dict[str, Any] = field(default_factory=dict)
    size: int = 0  # 0 = the prepared cache_dir's size (256, the paper's, when preparing)
    cache: str = ""  # root of prepared caches ("" = $CHESTXAI_CACHE/prepared)
    cache_dir: str = ""  # a prepared cache to use as it is (filled in at run time)
    source_b: str = ""  # domain B from another dataset ("" = the same as A)
    root_b: str = ""
    options_b: dict[str, Any] = field(default_factory=dict)
    cache_dir_b: str = ""
    domain_a: str = ""
    domain_b: str = ""
    val_fraction: float = 0.1  # when the source defines no split
    test_fraction: float = 0.2
    # ---- networks and objective -------------------------------------------------------------
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 0  # 0 = blocks_for_size(size)
    d_layers: int = 3
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    # ---- optimisation -----------------------------------------------------------------------
    epochs: int = 200
    decay_epochs: int = -1  # epochs of linear decay at the end; -1 = epochs // 2 (the reference's 100 + 100)
    max_steps: int = 0  # steps per epoch cap; 0 = max(|A|, |B|) / batch_size
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    amp: str = "auto"  # auto = float16 + GradScaler on CUDA, off on CPU; on | off
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    samples: int = 4  # images per domain in each epoch's sample grid

    def __post_init__(self) -> None:
        check_run_name(self.name)
        check_numbers(self, RULES)
        if self.size:
            check_size(self.size)
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"--amp must be one of {AMP_CHOICES}, got {self.amp!r}")
        check_device(self.device, "--device")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("--val-fraction + --test-fraction must be below 1 (nothing left to train on)")
        if self.decay_epochs > self.epochs:
            raise ValueError(f"--decay-epochs {self.decay_epochs} exceeds --epochs {self.epochs}")
        for flag, text in (("--domain-a", self.domain_a), ("--domain-b", self.domain_b)):
            if not str(text).strip():
                raise ValueError(f"{flag} is required: a label (Pneumothorax), not:LABEL or 'No Finding'")
            parse_domain(text)
        if self.domain_a.strip() == self.domain_b.strip() and not self.has_second_source:
            raise ValueError(f"--domain-a and --domain-b are both {self.domain_a!r}: nothing to translate")
        if "\0" in self.run_dir:
            raise ValueError(f"--run-dir {self.run_dir!r} contains a NUL byte")

    # ---- derived -----------------------------------------------------------------------------
    @property
    def has_second_source(self) -> bool:
        return bool(self.source_b or self.cache_dir_b)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name

    @property
    def constant_epochs(self) -> int:
        return self.epochs - self.decay

    @property
    def decay(self) -> int:
        return self.epochs // 2 if self.decay_epochs < 0 else self.decay_epochs

    def blocks(self, size: int) -> int:
        return self.n_blocks or blocks_for_size(size)

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate factor of (0-based) ``epoch``: 1 for the constant epochs, then linear decay
        ``1 - k / (decay + 1)`` in the k-th decay epoch (the reference's rule), so the rate is
        ``lr / (decay + 1)`` in the last epoch and would reach 0 the epoch after."""
        k = epoch - self.constant_epochs + 1
        return 1.0 if k <= 0 else max(0.0, 1.0 - k / (self.decay + 1))

    # ---- config.yaml ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "synthesis config") -> SynthSettings:
        raw = {k: v for k, v in dict(raw or {}).items() if k not in ("kind", "environment")}
        check_keys(raw, cls, where)
        try:
            return cls(**raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def changed_on_resume(self, old: SynthSettings) -> list[str]:
        """The :data:`FIXED_ON_RESUME` fields that differ from the run's ``old`` settings."""
        return [k for k in FIXED_ON_RESUME if getattr(self, k) != getattr(old, k)]

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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chestxai.checks import (
    DEVICE_HELP,
    check_device,
    check_keys,
    check_numbers,
    check_run_name,
    parse_device,
    parse_seed,
)
from chestxai.config import MAX_SIZE, MAX_WORKERS
from chestxai.devices import AMP_CHOICES  # one vocabulary with train.amp (re-exported)
from chestxai.errors import UserError
from chestxai.flags import flag_name, setting

KIND = "cyclegan"
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

# field -> (check, valid range as text); the flag an error names comes from the field (flag_name)
RULES: dict[str, tuple[Any, str]] = {
    "size": (lambda v: v == 0 or 32 <= v <= MAX_SIZE, f"0 (the cache's) or in [32, {MAX_SIZE}]"),
    "epochs": (lambda v: 1 <= v <= 100_000, "in [1, 100000]"),
    "decay_epochs": (lambda v: v >= -1, ">= -1 (-1 = half of --epochs)"),
    "max_steps": (lambda v: v >= 0, ">= 0 (0 = full epoch)"),
    "batch_size": (lambda v: 1 <= v <= 65_536, "in [1, 65536]"),
    "lr": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "lambda_cycle": (lambda v: 0 <= v <= 1000, "in [0, 1000]"),
    "lambda_identity": (lambda v: 0 <= v <= 100, "in [0, 100] (times the cycle weight)"),
    "pool_size": (lambda v: 0 <= v <= 10_000, "in [0, 10000] (0 = no pool)"),
    "ngf": (lambda v: 1 <= v <= 1024, "in [1, 1024]"),
    "ndf": (lambda v: 1 <= v <= 1024, "in [1, 1024]"),
    "n_blocks": (lambda v: 0 <= v <= 64, "in [0, 64] (0 = by size: 9 from 256 px, else 6)"),
    "d_layers": (lambda v: 1 <= v <= 6, "in [1, 6]"),
    "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32)"),
    "threads": (lambda v: 0 <= v <= MAX_WORKERS, f"in [0, {MAX_WORKERS}] (0 = torch's default)"),
    "samples": (lambda v: 1 <= v <= 64, "in [1, 64]"),
    "val_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "test_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
}
DATA, NETS, TRAINING = "data", "networks and losses", "training"
DOMAIN = "LABEL, not:LABEL or 'No Finding'"


def _number(key: str, default: Any, help: str, flag: str = "", group: str = "") -> Any:  # noqa: A002
    """A range-checked number: its valid range shown in --help is its rule's."""
    return setting(default, help=help, flag=flag, bounds=RULES[key][1], group=group)


@dataclass
class SynthSettings:
    name: str = setting(
        "synth",
        help="run name (run directory runs/<name>)",
        flag="--name",
        parse=check_run_name,
        group=TRAINING,
    )
    run_dir: str = setting(
        "", help="folder of the new run, when not runs/<name>", flag="--run-dir", group=TRAINING
    )
    # ---- data: domain A (and B unless a second source is given) --------------------------------
    source: str = setting(
        "medmnist",
        help="dataset reader (medmnist, nih, folder, csv, chexpert, siim, ...)",
        flag="--source",
        group=DATA,
    )
    root: str = setting(
        "", help="dataset folder (or file); none = the chestxai cache", flag="--root", group=DATA
    )
    options: dict[str, Any] = setting(factory=dict, help="reader options (--option KEY=VALUE)")
    size: int = _number("size", 0, "image side in px, a multiple of 4 (0 = the cache's; 256 when preparing)",
                        "--size", DATA)  # fmt: skip
    cache: str = setting(
        "", help="root folder of prepared caches; none = $CHESTXAI_CACHE/prepared", flag="--cache", group=DATA
    )
    cache_dir: str = setting(
        "",
        help="use this prepared cache as it is (instead of --source/--root)",
        flag="--cache-dir",
        group=DATA,
    )
    source_b: str = setting(
        "", help="take domain B from this second dataset (same --size)", flag="--source-b", group=DATA
    )
    root_b: str = setting("", help="folder of the second dataset", flag="--root-b", group=DATA)
    options_b: dict[str, Any] = setting(factory=dict, help="reader options of source_b (--option-b)")
    cache_dir_b: str = setting(
        "",
        help="a prepared cache for domain B (instead of --source-b/--root-b)",
        flag="--cache-dir-b",
        group=DATA,
    )
    domain_a: str = setting("", help=f"domain A: {DOMAIN}", flag="--domain-a", group=DATA)
    domain_b: str = setting("", help=f"domain B: {DOMAIN}", flag="--domain-b", group=DATA)
    val_fraction: float = _number("val_fraction", 0.1, "validation share when the source defines no split")
    test_fraction: float = _number("test_fraction", 0.2, "test share when the source defines no split")
    # ---- networks and objective -------------------------------------------------------------
    ngf: int = _number("ngf", 64, "generator filters (the paper's 64)", "--ngf", NETS)
    ndf: int = _number("ndf", 64, "discriminator filters", "--ndf", NETS)
    n_blocks: int = _number("n_blocks", 0, "generator residual blocks", "--blocks", NETS)
    d_layers: int = _number("d_layers", 3, "PatchGAN discriminator layers")
    lambda_cycle: float = _number("lambda_cycle", 10.0, "cycle-consistency weight", "--lambda-cycle", NETS)
    lambda_identity: float = _number(
        "lambda_identity", 0.5, "identity weight, times the cycle weight", "--lambda-identity", NETS
    )
    pool_size: int = _number("pool_size", 50, "past fakes the discriminators see", "--pool-size", NETS)
    # ---- optimisation -----------------------------------------------------------------------
    epochs: int = _number("epochs", 200, "epochs", "--epochs", TRAINING)
    decay_epochs: int = _number(
        "decay_epochs",
        -1,
        "last epochs of linear lr decay (the reference's 100 + 100)",
        "--decay-epochs",
        TRAINING,
    )
    max_steps: int = _number(
        "max_steps", 0, "cap on steps per epoch (default: max(|A|, |B|) / batch)", "--max-steps", TRAINING
    )
    batch_size: int = _number(
        "batch_size", 1, "images per domain per step (the paper's 1)", "--batch-size", TRAINING
    )
    lr: float = _number("lr", 2e-4, "Adam learning rate", "--lr", TRAINING)
    beta1: float = _number("beta1", 0.5, "Adam beta1")
    beta2: float = _number("beta2", 0.999, "Adam beta2")
    amp: str = setting(
        "auto",
        help="mixed precision: --amp on, --no-amp off; not given: auto = bfloat16 on CPUs with native "
        "bfloat16 and CUDA GPUs that support it, float16 + GradScaler on other CUDA GPUs, else float32; "
        "--amp where the device has neither: float32 with a warning (config.yaml: auto | on | off; the "
        "same decision as train.amp)",
        flag="--amp",
        choices=AMP_CHOICES,
        switch=("on", "off"),
        group=TRAINING,
    )
    seed: int = setting(0, help="seed", flag="--seed", parse=parse_seed, bounds=RULES["seed"][1])
    device: str = setting("auto", help=DEVICE_HELP, flag="--device", parse=parse_device)
    threads: int = _number("threads", 0, "torch CPU threads", "--threads", TRAINING)
    samples: int = _number(
        "samples", 4, "images per domain in each epoch's sample grid", "--samples", TRAINING
    )

    def __post_init__(self) -> None:
        check_run_name(self.name)
        check_numbers(self, {k: (ok, valid, flag_name(SynthSettings, k)) for k, (ok, valid) in RULES.items()})
        from chestxai.synth.domains import parse_domain  # numpy/torch: loaded when a run is configured,
        from chestxai.synth.networks import check_size  # not when the CLI reads these fields for --help

        if self.size:
            check_size(self.size)
        if self.amp not in AMP_CHOICES:
            raise UserError(
                f"amp must be one of {AMP_CHOICES} (--amp/--no-amp on the command line), got {self.amp!r}"
            )
        check_device(self.device, "--device")
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError("--val-fraction + --test-fraction must be below 1 (nothing left to train on)")
        if self.decay_epochs > self.epochs:
            raise UserError(f"--decay-epochs {self.decay_epochs} exceeds --epochs {self.epochs}")
        for flag, text in (("--domain-a", self.domain_a), ("--domain-b", self.domain_b)):
            if not str(text).strip():
                raise UserError(f"{flag} is required: a label (Pneumothorax), not:LABEL or 'No Finding'")
            parse_domain(text)
        if self.domain_a.strip() == self.domain_b.strip() and not self.has_second_source:
            raise UserError(f"--domain-a and --domain-b are both {self.domain_a!r}: nothing to translate")
        if "\0" in self.run_dir:
            raise UserError(f"--run-dir {self.run_dir!r} contains a NUL byte")

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
        from chestxai.synth.networks import blocks_for_size

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
            raise UserError(f"{where}: {exc}") from None

    def changed_on_resume(self, old: SynthSettings) -> list[str]:
        """The :data:`FIXED_ON_RESUME` fields that differ from the run's ``old`` settings."""
        return [k for k in FIXED_ON_RESUME if getattr(self, k) != getattr(old, k)]

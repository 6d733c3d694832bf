"""The one place a ``--device`` / ``train.device`` name becomes a torch device.

Every command that has ``--device`` offers ``auto``; before this module each stage resolved it its
own way (and ``explain`` not at all, so ``--device auto`` ended in a raw torch error). ``auto`` is
the first CUDA GPU when there is one, else the CPU; a CUDA name on a machine without CUDA is one
clear error naming the flag and the fix, not a torch traceback at the first ``.to(device)``.

The mixed-precision decision (:func:`choose_precision`) lives here too: it is the device's
capability that decides whether autocast helps or makes training ~10x slower.

torch is imported inside the functions so that importing this core module stays light.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
AUTO = "auto"


def pick_device(name: str | torch.device | None = AUTO, flag: str = "--device") -> torch.device:
    """``auto`` (or None): ``cuda:0`` when CUDA is available, else ``cpu``; any other name as torch
    reads it. ``flag`` names the setting in the error (``--device``, ``train.device``)."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name is None or name == AUTO:
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {name}: CUDA is not available here; use --device cpu or auto")
    return device


# ---- mixed precision: one decision for train, synth and bench ------------------------------------
# ``train.amp: true`` used to mean bfloat16 autocast on any CPU. A CPU without native bfloat16 (an
# AMD EPYC without AVX-512-BF16 or AMX) emulates it about 10x slower than float32, so a recipe with
# ``amp: true`` looked hung (0 of 6 NIH batches in 7 minutes, no message). The precision is now
# decided here by what the device really supports, said on screen and recorded in the run.
AMP_CHOICES = ("auto", "on", "off")
AMP_HELP = (
    "mixed precision: auto = bfloat16 on CPUs with native bfloat16 (AVX-512-BF16 or AMX) "
    "and CUDA GPUs with native bfloat16 (compute capability >= 8), float16 + GradScaler on other CUDA GPUs, "
    "float32 otherwise; "
    "on (--amp, true in a recipe) = mixed precision where the device supports it, else float32 with a "
    "warning; off (--no-amp, false) = float32"
)
_ON, _OFF = ("on", "true", "yes", "1"), ("off", "false", "no", "0")


def parse_amp(value: object, where: str = "train.amp") -> str:
    """A recipe's / flag's ``amp`` (auto, true/false, yes/no, on/off, 1/0) as ``auto``, ``on`` or ``off``."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in _ON:
        return "on"
    if text in _OFF:
        return "off"
    raise ValueError(f"{where} must be auto, true or false (--amp / --no-amp), got {value!r}")


@dataclass(frozen=True)
class Precision:
    """What a training step autocasts to: ``name`` is recorded in the run (float32 = no autocast)."""

    name: str  # float32 | bfloat16 | float16
    why: str  # one line for the screen

    @property
    def autocast(self) -> bool:
        return self.name != "float32"

    @property
    def scaler(self) -> bool:
        """float16 gradients need a GradScaler; bfloat16 has float32's range and does not."""
        return self.name == "float16"

    def dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.name)


def _cpuinfo_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16() -> bool:
    """AVX-512-BF16 or AMX-BF16: torch's own CPU capability checks, else /proc/cpuinfo's flags."""
    import torch

    names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up with care
    checks = [getattr(torch.cpu, name, None) for name in names]
    answers = [bool(check()) for check in checks if check is not None]
    if answers:
        return any(answers)
    return bool(_cpuinfo_flags() & {"avx512_bf16", "amx_bf16"})


def choose_precision(amp: str | bool, device: torch.device, flag: str = "train.amp") -> Precision:
    """The precision ``amp`` (auto/on/off) gives on ``device``; ``on`` where the device has no fast
    mixed precision falls back to float32 with a warning naming ``flag`` - never 10x slower silently."""
    import torch

    amp = parse_amp(amp, flag)
    if amp == "off":
        return Precision("float32", f"{flag} off")
    if device.type == "cuda":
        # native only (compute capability >= 8): torch's default also counts GPUs that merely emulate
        # bfloat16 (V100, T4), where autocast to it is slower than float16 + GradScaler
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return Precision("bfloat16", f"{flag} {amp}: this CUDA GPU supports bfloat16")
        return Precision("float16", f"{flag} {amp}: float16 + GradScaler (this CUDA GPU has no bfloat16)")
    if device.type == "cpu" and cpu_has_native_bf16():
        return Precision("bfloat16", f"{flag} {amp}: this CPU has native bfloat16 (AVX-512-BF16/AMX)")
    if device.type == "cpu":
        why = "this CPU has no native bfloat16 (AVX-512-BF16/AMX): emulated, it trains ~10x slower"
    else:
        why = f"mixed precision is not used on {device.type}"
    if amp == "on":
        log.warning(
            "%s is on, but %s; training in float32 (%s false / --no-amp silences this)", flag, why, flag
        )
    return Precision("float32", f"{flag} {amp}: {why}")


# ---- torch.compile: a recipe's train.compile --------------------------------------------------------
#: ``off`` or a torch.compile mode; a recipe's true/false read as default/off
COMPILE_CHOICES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILE_HELP = (
    "torch.compile the training step's model: off | default | reduce-overhead | max-autotune | "
    "max-autotune-no-cudagraphs (true = default, false = off); the first steps pay the compile time, "
    "validation and checkpoints use the eager model"
)


def parse_compile(value: object, where: str = "train.compile") -> str:
    """A recipe's / flag's ``compile`` (true/false or a mode name) as ``off`` or a mode name."""
    text = str(value).strip().lower()
    if text in _OFF:
        return "off"
    if text in _ON:
        return "default"
    if text in COMPILE_CHOICES:
        return text
    raise ValueError(f"{where} must be true, false or one of {', '.join(COMPILE_CHOICES)}; got {value!r}")

"""The one place a ``--device`` / ``train.device`` name becomes a torch device.

Every command that has ``--device`` offers ``auto``; before this module each stage resolved it its
own way (and ``explain`` not at all, so ``--device auto`` ended in a raw torch error). ``auto`` is
the first CUDA GPU when there is one, else the CPU; a CUDA name on a machine without CUDA is one
clear error naming the flag and the fix, not a torch traceback at the first ``.to(device)``.

torch is imported inside the function so that importing this core module stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

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

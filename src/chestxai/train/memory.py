"""A training run's own peak memory, even when several runs share one process.

``chestxai experiment`` and ``chestxai tune`` train their runs one after another in one process, so
a lifetime peak (``getrusage``'s ``ru_maxrss``) would give a small model the peak of a big one
trained before it. On a GPU the allocator's peak is reset per run. On Linux the kernel's
resident-set high-water mark (``VmHWM`` in ``/proc/self/status``) is reset the same way, by writing
``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0). Elsewhere, or where that file cannot be written
(some containers), the lifetime peak is what there is, and :func:`reset_peak_memory` says so.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> bool:
    """Start measuring this run's peak on ``device``; False when only the process's lifetime peak
    can be read (then :func:`peak_memory_mb` includes what ran before in this process)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _hwm_kib() is not None


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB since :func:`reset_peak_memory`: the CUDA allocator's peak on a GPU, else
    the process's peak resident set size (what ``compare``'s cost columns report, labelled by device)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    hwm = _hwm_kib()
    if hwm is not None:
        return hwm / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _hwm_kib() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None

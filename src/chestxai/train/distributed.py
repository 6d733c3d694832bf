"""Multi-process training through torchrun: process group setup and rank helpers.

``torchrun --nproc_per_node=N -m chestxai train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; we then use
NCCL on GPUs and gloo on CPU. Without those variables everything runs in one process.

Sharded inference (``predict`` / ``evaluate`` under torchrun) uses :func:`setup_inference`: a gloo
group on every device, with a timeout, and :func:`gather_to_main` / :func:`wait_for_all`, which turn
a rank that died or never arrives into a :class:`PeerError` instead of a hang.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from chestxai.devices import pick_device  # the one resolver


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> DistInfo:
    """Initialise the process group when launched by torchrun; a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's decision (e.g. early stop) for every rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


# --- sharded inference -------------------------------------------------------------------------
#: seconds a rank waits for the others at the end of sharded inference (gloo's own default); the
#: time the slowest shard takes beyond the fastest must fit in it (``--dist-timeout``)
INFERENCE_TIMEOUT_S = 1800.0


class PeerError(RuntimeError):
    """Another rank died or did not arrive within the timeout: the job fails instead of waiting."""


def setup_inference(timeout_s: float = INFERENCE_TIMEOUT_S) -> DistInfo:
    """A gloo process group for sharded inference, on CPU and GPU alike; a no-op without torchrun.

    Why gloo even on GPUs: ranks exchange their results (small CPU objects) once, so NCCL buys
    nothing, while gloo fails at once when a peer's process dies (its sockets close), honours
    ``timeout_s`` for one that hangs and has a monitored barrier that names the missing ranks.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if timeout_s <= 0:
        raise ValueError(f"--dist-timeout must be > 0 seconds, got {timeout_s}")
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _peer_error(info: DistInfo, timeout_s: float, what: str, exc: BaseException, waited: float) -> PeerError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    why = "died" if waited < timeout_s * 0.9 else f"did not arrive within --dist-timeout {timeout_s:g} s"
    return PeerError(
        f"rank {info.rank} of {info.world_size}: {what}: another rank {why} (after {waited:.1f} s of waiting; "
        f"gloo: {first}); its own error is in the launcher's log. Stopping instead of waiting"
        + ("; a slow but healthy shard needs a larger --dist-timeout" if why != "died" else "")
    )


def wait_for_all(info: DistInfo, timeout_s: float = INFERENCE_TIMEOUT_S, what: str = "barrier") -> None:
    """A barrier that fails with :class:`PeerError` (rank 0's names the ranks that never arrived)."""
    if not info.enabled:
        return
    started = time.monotonic()
    try:
        dist.monitored_barrier(timeout=timedelta(seconds=timeout_s), wait_all_ranks=True)
    except RuntimeError as exc:  # gloo's DistBackendError is a RuntimeError
        raise _peer_error(info, timeout_s, what, exc, time.monotonic() - started) from exc


def gather_to_main(
    obj: Any, info: DistInfo, timeout_s: float = INFERENCE_TIMEOUT_S, what: str = "gather"
) -> list | None:
    """Every rank's ``obj`` on rank 0, in rank order (``None`` on the other ranks); one process:
    ``[obj]``. Picklable objects only (numpy arrays, lists); a lost peer is a :class:`PeerError`."""
    if not info.enabled:
        return [obj]
    wait_for_all(info, timeout_s, what)
    out: list | None = [None] * info.world_size if info.is_main else None
    started = time.monotonic()
    try:
        dist.gather_object(obj, out, dst=0)
    except RuntimeError as exc:
        raise _peer_error(info, timeout_s, what, exc, time.monotonic() - started) from exc
    return out


def rank_device(name: str) -> torch.device:
    """:func:`pick_device`, then under torchrun each rank on its own GPU (``cuda:LOCAL_RANK``) when
    ``name`` leaves the index open (``auto``/``cuda``); an explicit ``cuda:N`` is kept."""
    device = pick_device(name)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device.type == "cuda" and world > 1 and name in ("auto", "cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local % max(torch.cuda.device_count(), 1))
    return device

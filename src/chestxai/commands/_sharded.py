"""What ``predict`` and ``evaluate`` share under torchrun: the gloo group, this rank's device, and a
lost peer turned into one line and exit code 1 (not a traceback per rank, not a hang)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

TIMEOUT_HELP = (
    "under torchrun: seconds a rank waits for the others (the slowest shard's extra time must fit) "
    "before the job fails instead of hanging (default 1800)"
)


def add_dist_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dist-timeout", type=float, default=1800.0, metavar="SECONDS", help=TIMEOUT_HELP)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_sharded(args: argparse.Namespace, what: str, body: Callable[[Any, str], int]) -> int:
    """``body(info, device)``: ``info`` the rank's :class:`~chestxai.train.distributed.DistInfo`
    under torchrun (WORLD_SIZE > 1), else ``None`` with ``--device`` as given."""
    if world_size() <= 1:
        return body(None, args.device)
    from chestxai.train import distributed as D

    info = D.setup_inference(args.dist_timeout)
    try:
        return body(info, str(D.rank_device(args.device)))
    except D.PeerError as exc:
        print(f"chestxai {what}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        D.teardown(info)

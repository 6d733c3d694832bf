"""``chestxai models``: list the registered architectures."""

from __future__ import annotations

import argparse

from chestxai.commands._common import add_common_flags


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model architectures")
    add_common_flags(p, device=False)  # --progress/--no-progress like every command (it draws no bar)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.models.registry import MODELS

    for name in MODELS.names():
        spec = MODELS.get(name)
        print(f"{name:16s} timm:{spec.timm_name:24s} {spec.family}  min input {spec.min_size}px")
    return 0

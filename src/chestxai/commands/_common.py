"""Flags every command spells the same way: ``--device``, ``--no-progress``, ``--seed``, ``-v``.

A user who learnt ``train --no-progress`` should not find ``explain`` without it, or ``--device``
meaning something else on another command. Commands call :func:`add_common_flags` instead of
declaring these themselves; ``cli`` adds ``-v/--verbose`` to every (sub)command.
"""

from __future__ import annotations

import argparse

from chestxai.checks import DEVICE_HELP, check_device, parse_seed


def device_flag(text: str) -> str:
    """argparse type for ``--device``: a usage error names the choices instead of a torch traceback."""
    try:
        return check_device(text, "--device")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seed_flag(text: str) -> int:
    """argparse type for ``--seed``: a whole number in [0, 2**32), as numpy's generators need."""
    try:
        return parse_seed(text, "--seed")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_common_flags(
    parser: argparse.ArgumentParser,
    device: bool = True,
    progress: bool = True,
    seed: bool = False,
    *,
    device_default: str | None = "auto",
    seed_default: int | None = 0,
    seed_help: str = "random seed",
    progress_aliases: tuple[str, ...] = (),
) -> None:
    """Add the shared flags; a default of None means "keep the recipe's value" (``train``).

    ``progress_aliases`` keeps a command's older spelling working (``prepare --quiet``).
    """
    if device:
        shown = "the recipe's" if device_default is None else device_default
        parser.add_argument(
            "--device", type=device_flag, default=device_default, help=f"{DEVICE_HELP}; default {shown}"
        )
    if progress:
        parser.add_argument(
            "--no-progress",
            *progress_aliases,
            dest="no_progress",
            action="store_true",
            help="no progress bars",
        )
    if seed:
        shown = "the recipe's" if seed_default is None else seed_default
        parser.add_argument(
            "--seed", type=seed_flag, default=seed_default, help=f"{seed_help} (default {shown})"
        )


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``-v`` after the command name too (``chestxai train -v``), counted like ``chestxai -v train``.

    SUPPRESS keeps a subcommand that did not see ``-v`` from resetting the global count to 0.
    """
    if "--verbose" not in parser._option_string_actions:
        parser.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="more log output (-vv for debug and tracebacks)",
        )

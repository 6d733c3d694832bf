"""Flags every command spells the same way: ``--device``, ``--progress/--no-progress``, ``--seed``, ``-v``.

A user who learnt ``train --no-progress`` should not find ``explain`` without it, or ``--device``
meaning something else on another command. Commands call :func:`add_common_flags` instead of
declaring these themselves; ``cli`` adds ``-v/--verbose`` to every (sub)command.

The grammar every command follows (tests/test_cli.py walks the parser to check it):

* the run a command reads is its positional ``RUN`` (``RUN...`` for several); a folder a command
  creates is an option: ``--run-dir`` for a new run (train, synth train, tune), ``--out`` otherwise;
* every switch is a ``--x/--no-x`` pair (:class:`NoSwitch` where the code reads ``args.no_x``);
* a flag name has one type on every command (``--sanity`` is a switch, ``--explain`` a method);
* a cap on the items a step processes is ``--limit`` or ``--<what>-limit`` (``explain --sanity-limit``,
  ``bench lesions --sanity-limit``); ``--n-boot`` defaults to :data:`N_BOOT` wherever it appears.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence

from chestxai.checks import DEVICE_HELP, parse_device, parse_seed
from chestxai.commands._flags import usage_type

#: bootstrap replicates for every confidence interval and paired comparison (one default everywhere)
N_BOOT = 1000


#: argparse types for ``--device`` and ``--seed``: a usage error naming the flag and the fix
device_flag = usage_type(parse_device)
seed_flag = usage_type(parse_seed)


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
        parser.add_argument("--progress", dest="no_progress", action=NoSwitch, help="progress bars")
        for alias in progress_aliases:  # an older spelling of --no-progress, not shown in --help
            parser.add_argument(
                alias,
                dest="no_progress",
                action=argparse.BooleanOptionalAction,
                default=False,
                help=argparse.SUPPRESS,
            )
    if seed:
        shown = "the recipe's" if seed_default is None else seed_default
        parser.add_argument(
            "--seed", type=seed_flag, default=seed_default, help=f"{seed_help} (default {shown})"
        )


def add_n_boot(parser: argparse.ArgumentParser, help: str) -> None:  # noqa: A002
    """``--n-boot``: bootstrap replicates, :data:`N_BOOT` unless given, on every command that has it."""
    parser.add_argument("--n-boot", type=int, default=N_BOOT, metavar="N", help=f"{help} (default {N_BOOT})")


def add_figures_flag(parser: argparse.ArgumentParser) -> None:
    """``--figures/--no-figures`` (read as ``args.no_figures``), the same on every command that draws."""
    parser.add_argument(
        "--figures", dest="no_figures", action=NoSwitch, help="write the figures (--no-figures: skip them)"
    )


class NoSwitch(argparse.BooleanOptionalAction):
    """``--x/--no-x`` for a switch the code reads as ``args.no_x`` (True after ``--no-x``).

    The switches that used to be a lone ``--no-x`` (``--no-progress``, ``--no-figures``) keep their
    ``no_x`` destination, so no command's body changes; ``--x`` is the default spelled out.
    """

    def __init__(self, option_strings: list[str], dest: str, default: bool = False, **kwargs: object) -> None:
        help_text = kwargs.pop("help", None)
        super().__init__(option_strings, dest, default=default, **kwargs)  # type: ignore[arg-type]
        self.help = help_text  # without BooleanOptionalAction's "(default: False)": False means "--x"

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        if option_string in self.option_strings:
            setattr(namespace, self.dest, option_string.startswith("--no-"))


def switch(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, help: str) -> None:  # noqa: A002
    """A ``--name/--no-name`` switch, off unless given (``--force``, ``--resume``, ``--dry-run``)."""
    parser.add_argument(name, action=argparse.BooleanOptionalAction, default=False, help=help)


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


class RegistryChoices(Sequence[str]):
    """argparse ``choices`` read from a registry when first needed (checking a given value, or
    printing ``--help``), not when the parser is built: a registry's modules import torch, and
    building the parser must not. Pass a ``metavar`` beside it (argparse would otherwise list the
    choices at ``add_argument``) and ``%(choices)s`` in the help to show them.
    """

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names

    def _list(self) -> list[str]:
        return list(self._names())  # asked each time: the registry is the one list

    def __getitem__(self, index):  # noqa: ANN001, ANN204 - Sequence's int/slice overloads
        return self._list()[index]

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __contains__(self, value: object) -> bool:
        return value in self._list()

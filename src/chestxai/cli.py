"""``chestxai <command>``: each command lives in ``chestxai/commands/<name>.py``.

A command module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
plain function taking the parsed namespace. Heavy imports (torch, timm) happen inside those
functions so that ``chestxai --help`` stays fast.

Failures a user can fix (:class:`chestxai.errors.UserError`, and for compatibility the built-in
types that code raised for them before: ValueError, FileNotFoundError, KeyError, FileExistsError)
end in one line on stderr and exit code 2 (``-vv`` shows the traceback); a programming error
(TypeError, AttributeError, ...) keeps its traceback. Ctrl-C ends with one line and 130, the
shell's code for SIGINT.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import pickle
import pkgutil
import sys

from chestxai import __version__, commands
from chestxai.commands._common import add_verbose_flag
from chestxai.errors import UserError

#: printed as one line with exit code 2; UserError is the one new code raises (it is a ValueError)
USER_ERRORS = (UserError, ValueError, FileNotFoundError, KeyError, FileExistsError)
#: words in a RuntimeError that mean torch.load(weights_only=True) refused a file's pickle
UNPICKLE_WORDS = ("weights only load failed", "weights_only", "unpickl")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (``data summary`` included), for flags every command takes."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out += [child, *_subparsers(child)]
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chestxai",
        description="Explainable chest X-ray diagnosis: prepare data, train, evaluate, explain, report. "
        "Research software, not for clinical use.",
    )
    parser.add_argument("--version", action="version", version=f"chestxai {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue  # helpers shared by commands, not commands
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    for child in _subparsers(parser):
        add_verbose_flag(child)
    return parser


def _refused_pickle(exc: BaseException) -> bool:
    if isinstance(exc, pickle.UnpicklingError):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in UNPICKLE_WORDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prefix = f"chestxai {args.command}"
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        if args.verbose >= 2:
            raise
        print(f"\n{prefix}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        # user errors: one clear line, no traceback (use -vv to see it)
        if args.verbose >= 2:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{prefix}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:
        if args.verbose >= 2 or exc.errno != errno.ENOSPC:
            raise
        print(f"{prefix}: error: {exc if exc.filename else exc.strerror}", file=sys.stderr)  # disk full
        return 2
    except (pickle.UnpicklingError, RuntimeError) as exc:
        if args.verbose >= 2 or not _refused_pickle(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{prefix}: error: not a chestxai checkpoint, refused to unpickle ({first})", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

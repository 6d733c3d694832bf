"""``chestxai <command>``: each command lives in ``chestxai/commands/<name>.py``.

A command module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
plain function taking the parsed namespace. Heavy imports (torch, timm) happen inside those
functions so that ``chestxai --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from chestxai import __version__, commands


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
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return parser


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
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError, KeyError, FileExistsError) as exc:
        # user errors: one clear line, no traceback (use -vv to see it)
        if args.verbose >= 2:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"chestxai {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

"""``--option KEY=VALUE`` for every command that reads a dataset (``prepare``, ``data summary``).

One parser, so that the same flag means the same thing everywhere: names are checked against the
reader's signature (an unknown one is a one-line error listing the valid options) and each value
is read as the type the reader declares (:mod:`chestxai.data.reader_options`), never as YAML:
``id_col=007`` stays text, ``masks=no`` is false, ``classes=A,B`` / ``classes=[A, B]`` a list.
"""

from __future__ import annotations

from typing import Any

from chestxai.errors import UserError

HELP = (
    "reader option, repeatable; VALUE is read as the option's declared type "
    "(true/false, numbers, text, lists as A,B); `chestxai data sources` lists the readers"
)


def split_pairs(pairs: list[str] | None) -> dict[str, str]:
    """``["a=1", "b =x"]`` -> ``{"a": "1", "b": "x"}``: untyped text; a repeated key's last value wins."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--option {pair!r} is not KEY=VALUE (e.g. --option include_no_finding=true)")
        out[key.strip().replace("-", "_")] = value  # as typed: sep=" " is a separator
    return out


def reader_options(source: str, pairs: list[str] | None) -> dict[str, Any]:
    """Parse and check ``--option`` pairs for the reader of ``source`` (ValueError/KeyError on bad input)."""
    from chestxai.data.reader_options import parse_reader_options

    return parse_reader_options(source, split_pairs(pairs))

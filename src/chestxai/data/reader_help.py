"""What ``chestxai data sources`` prints for each reader: the layout it expects and its options.

Why read it from the reader itself: a second, hand-written description per source drifts from the
code (the command used to print each reader's first docstring line, which for three sources was
"see the module docstring", a file a user of the CLI never opens). The layout is the literal block
(``Layout ...::``) every reader module's docstring carries, the options are the reader's keyword
parameters with their defaults and declared types, and ``data sources NAME`` prints the module
docstring whole.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderHelp:
    name: str
    title: str  # the module docstring's first line
    layout: list[str]  # the docstring's literal block: the files the reader expects
    options: list[tuple[str, str, str]]  # (name, default as typed on the command line, type)
    doc: str  # the whole module docstring


def _literal_block(doc: str) -> list[str]:
    """The indented lines after the first line ending in ``::`` (reST literal block)."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip().endswith("::")), None)
    if start is None:
        return []
    block: list[str] = []
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line.strip())
    return [line for line in block if line]


def _default(value: object) -> str:
    if value is inspect.Parameter.empty or value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def reader_help(source: str) -> ReaderHelp:
    """The help of reader ``source`` (KeyError listing the readers for an unknown name)."""
    from chestxai.data.readers import READERS, list_readers

    list_readers()  # imports every reader module
    reader = READERS.get(source)
    doc = inspect.cleandoc(sys.modules[reader.__module__].__doc__ or reader.__doc__ or "")
    options = []
    for i, (name, p) in enumerate(inspect.signature(reader).parameters.items()):
        if i == 0 or p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue  # the first parameter is the dataset root (--root)
        kind = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        options.append((name, _default(p.default), str(kind).replace(" | None", "")))
    title = doc.splitlines()[0] if doc else ""
    return ReaderHelp(source, title, _literal_block(doc), options, doc)


def format_reader_help(h: ReaderHelp, full: bool = False) -> str:
    """``name  title``, the layout and the options (``full``: the whole docstring instead of the layout)."""
    out = [f"{h.name}: {h.title}"]
    if full:
        out += [*h.doc.splitlines()[1:], ""]
    elif h.layout:
        out += ["  layout (--root):", *(f"    {line}" for line in h.layout)]
    opts = ", ".join(
        f"{name}={default} ({kind})" if kind else f"{name}={default}" for name, default, kind in h.options
    )
    out.append(
        textwrap.fill(
            f"options (--option KEY=VALUE): {opts or 'none'}", width=100, initial_indent="  ",
            subsequent_indent="    ", break_on_hyphens=False,
        )
    )  # fmt: skip
    return "\n".join(out)

"""Dataset readers: one module per public source, each returning an :class:`ImageTable`.

A reader is a function ``read(root, **options) -> ImageTable`` registered under its source name
with ``@READERS.register("name")``. Every module in this package is imported on first use, so
adding a reader is adding a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from chestxai.data.table import ImageTable
from chestxai.registry import Registry


class Reader(Protocol):
    def __call__(self, root: Path, **options: Any) -> ImageTable: ...


#: every module of this package is imported on the first lookup (the registry's ``package``)
READERS: Registry[Reader] = Registry("reader", package=__name__)


def list_readers() -> list[str]:
    return READERS.names()


def read_table(source: str, root: str | Path, **options: Any) -> ImageTable:
    """Read dataset ``source`` found at ``root``; ``options`` are the reader's keyword options."""
    reader = READERS.get(source)
    return reader(Path(root).expanduser(), **options)

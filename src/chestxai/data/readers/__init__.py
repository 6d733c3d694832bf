"""Dataset readers: one module per public source, each returning an :class:`ImageTable`.

A reader is a function ``read(root, **options) -> ImageTable`` registered under its source name
with ``@READERS.register("name")``. Every module in this package is imported on first use, so
adding a reader is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Protocol

from chestxai.data.table import ImageTable
from chestxai.registry import Registry


class Reader(Protocol):
    def __call__(self, root: Path, **options: Any) -> ImageTable: ...


READERS: Registry[Reader] = Registry("reader")
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    _loaded = True


def list_readers() -> list[str]:
    _load_all()
    return READERS.names()


def read_table(source: str, root: str | Path, **options: Any) -> ImageTable:
    """Read dataset ``source`` found at ``root``; ``options`` are the reader's keyword options."""
    _load_all()
    reader = READERS.get(source)
    return reader(Path(root).expanduser(), **options)

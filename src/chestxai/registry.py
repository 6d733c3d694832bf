"""One small generic registry: name -> builder, with a helpful error for unknown names.

Used for dataset readers, models, heads, explainers... so each family has ``list_*()`` and a
lookup whose KeyError lists the valid names (the timm ``create_model`` pattern).

The extension idiom is the same for every family: an entry registers itself where it is defined,
``@HEADS.register("pcam")`` on a class or builder. A registry made with ``package=`` imports every
module of that package the first time it is asked for a name, so a new entry is a new file in the
package and nothing else: no list to edit, no import to add.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``name``, or ``""``: the one hint
    every unknown-name error in chestxai (registries, config keys, tune kinds, domain labels,
    experiment members) appends, so a misspelling reads the same wherever it is made."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists valid names and the closest match."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to builders. ``kind`` is used in error messages ("model", "reader", ...).

    ``package`` (a dotted package name) is imported module by module before the first lookup, so
    the entries its modules register are all present; registering never triggers it (the package
    itself registers while it loads).
    """

    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._loaded = package is None

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: a module that looks a name up while loading must not recurse
        try:
            pkg = importlib.import_module(self.package)
            for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
                if not mod.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{mod.name}")
        except BaseException:
            self._loaded = False  # a broken module fails every lookup, not just the first
            raise

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@READERS.register("nih")``."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        self.register(name)(obj)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._items)}. Valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)

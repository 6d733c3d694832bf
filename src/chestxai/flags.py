"""Field metadata that makes a settings dataclass its own command-line reference.

A settings field (``RunConfig``'s sections, ``SynthSettings``, ``ExplainSettings``) is declared with
:func:`setting` instead of ``dataclasses.field``: its help text, choices, valid range and - when a
command exposes it - its flag name sit on the field itself. ``chestxai.commands._flags`` turns those
fields into argparse options and parsed flags back into values, so no command restates a dataclass
by hand (the hand-written flag -> key maps drifted: a field renamed in one place kept its old flag).

One owner per fact: the valid range stays in the module's range rules (``config.RULES``,
``synth.settings.RULES``), which validate the value; the field only points at the rule's text for
the help. A field without a ``flag`` is set from a recipe / ``--set`` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass
from typing import Any

#: the ``dataclasses.field(metadata=...)`` key this module owns
KEY = "chestxai.flag"


@dataclass(frozen=True)
class FlagSpec:
    """What a command line needs to know about one settings field."""

    help: str
    flag: str = ""  # "--lr": the command mapping onto this dataclass offers it; "" = recipe/--set only
    choices: tuple[Any, ...] = ()
    bounds: str = ""  # valid range as text, taken from the module's range rule (shown in --help)
    parse: Callable[[str], Any] | None = None  # text -> value (ValueError on bad text); None = declared type
    switch: tuple[Any, Any] | None = None  # a --x/--no-x flag on a non-bool field: (value of --x, of --no-x)
    metavar: str | None = None
    group: str = ""  # argparse group title in the command's --help ("" = the command's own options)


def setting(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | Any = MISSING,
    help: str,  # noqa: A002 - argparse's word
    flag: str = "",
    choices: tuple[Any, ...] = (),
    bounds: str = "",
    parse: Callable[[str], Any] | None = None,
    switch: tuple[Any, Any] | None = None,
    metavar: str | None = None,
    group: str = "",
) -> Any:
    """``dataclasses.field`` with a :class:`FlagSpec` attached (``factory`` = ``default_factory``)."""
    spec = FlagSpec(help, flag, tuple(choices), bounds, parse, switch, metavar, group)
    return dataclasses.field(default=default, default_factory=factory, metadata={KEY: spec})


@dataclass(frozen=True)
class SettingField:
    """One field of a (possibly nested) settings dataclass, by its dotted key (``train.lr``)."""

    key: str
    field: Field
    spec: FlagSpec | None

    @property
    def default(self) -> Any:
        f = self.field
        return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default

    @property
    def required(self) -> bool:
        """No default: a command that offers the field as a flag requires it."""
        return self.field.default is MISSING and self.field.default_factory is MISSING

    @property
    def type_name(self) -> str:
        return str(self.field.type)


def _nested(f: Field) -> type | None:
    """The dataclass a section field holds (``RunConfig.train`` -> ``TrainConfig``), else None."""
    factory = f.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) else None


def setting_fields(cls: type, prefix: str = "") -> list[SettingField]:
    """Every field of ``cls`` in declaration order, sections flattened to dotted keys."""
    out: list[SettingField] = []
    for f in dataclasses.fields(cls):
        section = _nested(f)
        if section is not None:
            out += setting_fields(section, f"{prefix}{f.name}.")
        else:
            out.append(SettingField(f"{prefix}{f.name}", f, f.metadata.get(KEY)))
    return out


def flag_fields(cls: type) -> list[SettingField]:
    """The fields of ``cls`` that a command offers as flags (those declared with a ``flag``)."""
    return [s for s in setting_fields(cls) if s.spec is not None and s.spec.flag]


def flag_name(cls: type, key: str) -> str:
    """The flag a user knows field ``key`` by: its declared flag, else ``--key-with-dashes``."""
    for s in setting_fields(cls):
        if s.key == key:
            return s.spec.flag if s.spec is not None and s.spec.flag else f"--{key.replace('_', '-')}"
    raise KeyError(key)

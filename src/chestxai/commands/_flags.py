"""Flags generated from a settings dataclass, and parsed flags turned back into its values.

A command that maps flags onto settings (``train`` -> ``RunConfig``, ``synth train`` ->
``SynthSettings``, ``explain`` -> ``ExplainSettings``) calls :func:`add_setting_flags` for the
options and :func:`setting_values` for the values; the flag name, help, choices and valid range
come from the field (:mod:`chestxai.flags`). Every generated flag defaults to None ("not given"),
so a flag left out keeps the recipe's value (train), the resumed run's (synth) or the field's
default; values go to the settings as the Python objects argparse made - text stays text - and
the settings validate them (their errors name the key, e.g. ``train.lr must be in (0, 10]``).
A bool field (or one with a ``switch``) is a ``--x/--no-x`` pair.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from typing import Any

from chestxai.flags import SettingField, flag_fields

PLAIN_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def usage_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse type: a ValueError from ``parse`` becomes a usage error with its own message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")  # argparse names it in "invalid X value"
    convert.__annotations__ = dict(getattr(parse, "__annotations__", {}))  # the value's type, for tests
    return convert


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "":
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _help(s: SettingField, default_note: str | None) -> str:
    spec = s.spec
    assert spec is not None
    parts = [spec.bounds] if spec.bounds else []
    note = default_note if default_note is not None else "default {default}"
    parts.append(note.format(default=_shown(s.default)))
    return f"{spec.help} ({'; '.join(parts)})"


def add_setting_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    default_note: str | None = None,
    groups: dict[str, Any] | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """Add one option per flagged field of ``cls``; returns the argparse groups by title.

    ``default_note`` replaces "default {default}" in the help (``train``: the recipe's value); ``groups``
    are groups the command made already (to put its own options beside the generated ones);
    ``only``: these dotted keys alone (``quickstart`` offers two of ``train``'s flags).
    """
    groups = dict(groups or {})
    for s in _chosen(cls, only):
        spec = s.spec
        assert spec is not None
        where: Any = parser
        if spec.group:
            where = groups.get(spec.group) or groups.setdefault(
                spec.group, parser.add_argument_group(spec.group)
            )
        kwargs: dict[str, Any] = {"dest": _dest(spec.flag), "default": None, "help": _help(s, default_note)}
        if s.required:
            kwargs["required"], kwargs["help"] = True, spec.help
        if s.type_name == "bool" or spec.switch is not None:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            parse = spec.parse or PLAIN_TYPES.get(s.type_name)
            if parse is None:
                raise TypeError(f"{cls.__name__}.{s.key}: a {s.type_name} field needs a parse function")
            kwargs["type"] = parse if parse in PLAIN_TYPES.values() else usage_type(parse)
            if spec.choices:
                kwargs["choices"] = spec.choices
            if spec.metavar:
                kwargs["metavar"] = spec.metavar
        where.add_argument(spec.flag, **kwargs)
    return groups


def _chosen(cls: type, only: Collection[str] | None) -> list[SettingField]:
    chosen = [s for s in flag_fields(cls) if only is None or s.key in only]
    missing = set(only or ()) - {s.key for s in chosen}
    if missing:
        raise TypeError(f"{cls.__name__} has no flagged field {sorted(missing)}")
    return chosen


def setting_values(
    args: argparse.Namespace, cls: type, only: Collection[str] | None = None
) -> dict[str, Any]:
    """Dotted key -> value of every flag of ``cls`` that was given (a None flag was not given)."""
    out: dict[str, Any] = {}
    for s in _chosen(cls, only):
        spec = s.spec
        assert spec is not None
        value = getattr(args, _dest(spec.flag), None)
        if value is None:
            continue
        if spec.switch is not None:
            value = spec.switch[0] if value else spec.switch[1]
        out[s.key] = value
    return out

"""Generic checks of user input, shared by the config sections, experiment files and synth
settings: numbers in range, one of a set of choices, known keys, a torch device name, a run name.
Each raises a UserError (a ValueError) that names what the user wrote, the value and what is valid."""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any

from chestxai.errors import UserError
from chestxai.registry import did_you_mean


def check_numbers(obj: Any, rules: dict[str, tuple[Any, str, str]]) -> None:
    """ValueError for the first bad number of dataclass ``obj``: ``rules`` maps a field to (check,
    valid range as text, the name the user knows it by: ``train.lr`` in a recipe, ``--lr`` on a
    command line), and the error names it, the value and the valid range."""
    types = {f.name: str(f.type) for f in fields(obj)}
    for key, (ok, valid, shown) in rules.items():
        value = getattr(obj, key)
        kind = types[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{shown} must be a number ({kind}), got {value!r}")
        if kind == "int" and isinstance(value, float):
            raise UserError(f"{shown} must be a whole number, got {value!r}")
        if not math.isfinite(value) or not ok(value):
            raise UserError(f"{shown} must be {valid}, got {value!r}")


def check_choice(section: str, key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(f"{section}.{key} must be one of {allowed}, got {value!r}")


def check_keys(given: Any, valid: Any, where: str) -> None:
    """ValueError for the first key of ``given`` not among ``valid`` (names, or a dataclass whose
    fields they are), with the closest valid key as a hint and the full list."""
    names = [f.name for f in fields(valid)] if isinstance(valid, type) else [str(v) for v in valid]
    for key in given:
        if key not in names:
            raise UserError(
                f"{where}: unknown key {key!r}{did_you_mean(key, names)}. Valid keys: {', '.join(names)}"
            )


DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (auto = cuda when available)"
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


def check_device(name: str, where: str = "device") -> str:
    """``name`` if torch can mean it (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), else ValueError.

    Checked here so that ``--device off`` fails before any data is read, with the choices listed.
    """
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise UserError(f"{where} must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    return name


def parse_device(text: str) -> str:
    """``--device``'s parse function (the settings' device fields and every command's flag)."""
    return check_device(text, "--device")


def check_run_name(name: str) -> str:
    """``name`` if it is one usable folder name under runs/, else a ValueError saying why.

    ``--name ..`` or ``--name a/b`` would put a run outside runs/ or inside another run; an empty
    name would train into runs/ itself. Use ``run_dir`` for an explicit path.
    """
    problems = {
        "it is empty": not name.strip(),
        "'.' and '..' are not folder names": name in (".", ".."),
        "it contains a path separator (use --run-dir for a path)": "/" in name or "\\" in name,
        "it contains a NUL byte": "\0" in name,
    }
    for why, found in problems.items():
        if found:
            raise UserError(f"run name {name!r} is not a valid single folder name: {why}")
    return name


def parse_seed(text: str, where: str = "--seed") -> int:
    """Command-line text -> a seed: a whole number in [0, 2**32), as numpy's generators need."""
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{where} must be a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise UserError(f"{where} must be in [0, 2**32), got {value}")
    return value

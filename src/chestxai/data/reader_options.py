"""Reader options checked against the reader's own signature, before any file is read.

Why here, and only here: ``chestxai prepare --option``, ``chestxai data summary --option`` and
a recipe's ``data.options`` all end in ``read_table(source, root, **options)``. Passed blindly,
an unknown name is a raw ``TypeError`` and a list where the reader expects text dies deep inside
pandas. The reader's keyword parameters and their annotations already say what is valid, so one
function checks names (listing the valid ones) and types, and another turns command-line text
into the declared type: ``masks=no`` is ``False`` for a ``bool`` option, ``id_col=007`` stays the
text ``"007"`` for a ``str`` option, ``classes=A,B`` or ``classes=[A, B]`` is a list for a
``list[str]`` option.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TRUE, _FALSE, _NONE = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("none", "null")


def reader_parameters(source: str) -> dict[str, set[type]]:
    """Option name -> the types its annotation allows (empty set: unannotated, anything goes).

    Raises KeyError (listing the readers) for an unknown source. A reader taking ``**options``
    accepts any name: it is then reported under the key ``"**"``.
    """
    from chestxai.data.readers import READERS, list_readers

    list_readers()  # imports every reader module, so the registry is complete
    reader = READERS.get(source)
    try:
        hints = typing.get_type_hints(reader)
    except (NameError, TypeError):  # an annotation that cannot be evaluated: check names only
        hints = {}
    out: dict[str, set[type]] = {}
    for i, (name, p) in enumerate(inspect.signature(reader).parameters.items()):
        if i == 0:  # the dataset root, given by --root
            continue
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            out["**"] = set()
        elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
            out[name] = _allowed(hints.get(name))
    return out


def check_reader_options(source: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``options`` as a dict if the reader of ``source`` takes them; else a ValueError.

    The error names the bad option and lists the valid ones (or says which type was expected).
    """
    params = reader_parameters(source)
    _check_names(source, params, options)
    for name, value in options.items():
        allowed = params.get(name, set())
        if allowed and not _fits(value, allowed):
            raise ValueError(
                f"option {name}={value!r} of source {source!r}: expected {_describe(allowed)}, "
                f"got {type(value).__name__}"
            )
    return dict(options)


def parse_reader_options(source: str, texts: Mapping[str, str]) -> dict[str, Any]:
    """Command-line text per option -> values of each option's declared type, checked."""
    params = reader_parameters(source)
    _check_names(source, params, texts)  # names first: the clearest error
    out = {}
    for name, text in texts.items():
        allowed = params.get(name, set())
        out[name] = _parse(name, text, allowed) if allowed else parse_scalar(text)
    return check_reader_options(source, out)


def parse_scalar(text: str) -> Any:
    """Text of an option without a declared type -> bool / None / int / float / str."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in _NONE:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


# --- helpers -----------------------------------------------------------------------------------
def _check_names(source: str, params: dict[str, set[type]], options: Mapping[str, Any]) -> None:
    unknown = [str(k) for k in options if k not in params]
    if unknown and "**" not in params:
        valid = ", ".join(n for n in params if n != "**") or "(none)"
        raise ValueError(f"source {source!r} has no option {', '.join(unknown)}; its options are: {valid}")


def _allowed(hint: Any) -> set[type]:
    """``str | list[str] | None`` -> {str, list, NoneType}; unknown constructs -> {} (no check)."""
    if hint is None or hint is Any:
        return set()
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_allowed(a) for a in typing.get_args(hint)]
        return set().union(*parts) if all(parts) else set()
    if origin in (list, tuple, set, frozenset):
        return {list}
    if hint is type(None):
        return {type(None)}
    if hint in (bool, int, float, str, list):
        return {hint}
    if isinstance(hint, type) and issubclass(hint, Path):
        return {Path, str}
    return set()


def _fits(value: Any, allowed: set[type]) -> bool:
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    # a number where text is declared is fine (a recipe's ``positive: 1``; readers compare as text)
    if isinstance(value, int):
        return bool(allowed & {int, float, str})
    if isinstance(value, float):
        return bool(allowed & {float, str})
    if isinstance(value, (list, tuple)):
        return list in allowed and all(isinstance(v, (str, int, float)) for v in value)
    if isinstance(value, (str, Path)):
        return bool(allowed & {str, Path})
    return False


def _describe(allowed: set[type]) -> str:
    names = {
        bool: "true/false",
        int: "a whole number",
        float: "a number",
        str: "text",
        list: "a list (A,B or [A, B])",
        type(None): "none",
        Path: "a path",
    }
    return " or ".join(names[t] for t in (bool, int, float, str, Path, list, type(None)) if t in allowed)


def _parse(name: str, text: str, allowed: set[type]) -> Any:
    low = text.strip().lower()
    if type(None) in allowed and low in _NONE:
        return None
    if bool in allowed:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    # an int where a float is declared stays an int (as YAML would read it): 1024, not 1024.0
    for cast in [t for t in (int, float) if t in allowed or (t is int and float in allowed)]:
        try:
            return cast(text)
        except ValueError:
            pass
    bracketed = low.startswith("[") and low.endswith("]")
    if list in allowed and (bracketed or not allowed & {str, Path}):
        inner = text.strip()[1:-1] if bracketed else text
        return [item.strip().strip("'\"") for item in inner.split(",") if item.strip()]
    if allowed & {str, Path}:
        return text
    if type(None) in allowed and not low:
        return None
    raise ValueError(f"--option {name}={text!r}: expected {_describe(allowed)}")

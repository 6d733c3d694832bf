"""The search space of ``chestxai tune``: a small YAML over recipe keys, checked before any trial.

::

    train.lr: {log_uniform: [1e-5, 1e-2]}
    train.batch_size: {choice: [64, 128]}
    model.dropout: {uniform: [0, 0.5]}         # optional step: 0.1
    train.epochs: {int: [5, 20]}               # optional step: 5, or log: true

Every key is a recipe key (``section.key``), every bound or choice a value that key accepts. A
study that fails on trial 13 because ``model.dropout`` reached 1.2, or that silently searched
``train.lrr``, costs hours; so the whole space is validated against the recipe up front: the key
(with the recipes' own misspelt-key message), the kind, the range (empty, reversed, non-positive
for a log scale), the type of each value for its key, and every combination of the extremes (a
searched ``train.epochs`` below the recipe's ``train.warmup_epochs`` is an error here, not a
failed trial). A key also fixed with ``--set`` is refused: one of the two would be ignored. Keys
that name the machine are checked against this one (a ``train.device`` choice of ``cuda`` on a CPU
machine, a missing ``data.root`` folder), and the keys a run fills in itself (``train.precision``,
``data.cache_dir``) cannot be searched.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chestxai.config import SECTIONS, apply_values, config_from_dict, field_type, parse_text
from chestxai.recipes import RECIPES, shipped_or_path
from chestxai.registry import did_you_mean
from chestxai.yamlsafe import load_yaml_file, load_yaml_text

SPACES = RECIPES / "spaces"
KINDS = ("uniform", "log_uniform", "int", "choice")
#: options each kind takes besides its list
OPTIONS = {"uniform": ("step",), "log_uniform": (), "int": ("step", "log"), "choice": ()}
#: kinds that fit a field's declared type (choice fits every type)
KINDS_FOR_TYPE = {"float": ("uniform", "log_uniform", "int", "choice"), "int": ("int", "choice")}
#: combinations of extremes checked against the recipe; beyond this only one key varies at a time
MAX_COMBINATIONS = 4096


@dataclass(frozen=True)
class Param:
    """One searched key: ``kind`` with ``low``/``high`` (+ ``step``, ``log``) or ``choices``."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value of this key for an Optuna trial (``trial.suggest_*`` with the key as name)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(
            self.key, self.low, self.high, step=self.step, log=self.kind == "log_uniform"
        )

    def extremes(self) -> list[Any]:
        """The values that bound what the trials can draw (ranges are convex, so these suffice)."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        """The canonical YAML form (what ``space.yaml`` stores and a re-run is compared with)."""
        out: dict[str, Any] = {
            self.kind: list(self.choices) if self.kind == "choice" else [self.low, self.high]
        }
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {list(self.choices)}"
        extra = f", step {self.step}" if self.step is not None else ""
        scale = "log " if self.kind == "log_uniform" or self.log else ""
        what = "integers" if self.kind == "int" else "values"
        return f"{scale}{what} in [{self.low}, {self.high}]{extra}"


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    source: str = "search space"
    keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(p.key for p in self.params))

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {p.key: p.suggest(trial) for p in self.params}

    def canonical(self) -> dict[str, Any]:
        return {p.key: p.to_dict() for p in self.params}

    def to_yaml(self) -> str:
        head = "# the search space of this study (chestxai tune); a re-run with another space is refused\n"
        return head + yaml.safe_dump(self.canonical(), sort_keys=False, default_flow_style=None)

    @property
    def touches_data(self) -> bool:
        """True when a searched key changes the prepared cache (then each trial prepares its own)."""
        return any(k.startswith("data.") for k in self.keys)


def space_path(path_or_name: str | Path) -> Path:
    """A space file: a path, or the name of a shipped space (``configs/spaces/<name>.yaml``)."""
    return shipped_or_path(path_or_name, SPACES, "--space", "the shipped spaces in configs/spaces/")


def load_space(path_or_name: str | Path, base: dict[str, Any], overrides: list[str] | None = None) -> Space:
    """Read, parse and validate a space file against ``base`` (a resolved recipe as a dict) and
    the ``--set`` overrides; ValueError naming the file and the fix on the first problem."""
    path = space_path(path_or_name)
    space = parse_space(load_yaml_file(path), str(path))
    check_space(space, base, overrides or [])
    return space


def parse_space_text(text: str, where: str) -> Space:
    """A space from YAML text (e.g. a stored ``space.yaml``), structure checks only."""
    return parse_space(load_yaml_text(text, where), where)


# ---- structure: keys, kinds, ranges --------------------------------------------------------------
def parse_space(raw: Any, where: str) -> Space:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(
            f"{where}: a search space is a YAML mapping of recipe keys to ranges, e.g. "
            "'train.lr: {log_uniform: [1e-5, 1e-2]}'"
        )
    return Space(tuple(_param(str(key), spec, where) for key, spec in raw.items()), where)


def _check_key(key: str, where: str) -> str:
    """The key's declared type; unknown keys raise the recipes' own message (closest key named)."""
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"{where}: {key!r} is not a key like section.key (e.g. train.lr)")
    declared = field_type(key)
    if declared is None:
        nested: dict[str, Any] = {}
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = None
        config_from_dict(nested, where)  # raises "unknown key ... (did you mean ...?). Valid keys: ..."
        raise ValueError(f"{where}: {key!r} is not a recipe key (it has no sub-keys)")
    if parts[0] not in SECTIONS:
        raise ValueError(
            f"{where}: {key!r} cannot be searched; search keys of the sections {', '.join(SECTIONS)} "
            "(e.g. train.lr)"
        )
    return declared


def _kind(key: str, spec: Any, where: str) -> str:
    example = "{log_uniform: [1e-5, 1e-2]}, {uniform: [0, 0.5]}, {int: [5, 20]} or {choice: [64, 128]}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: {key} must be a mapping like {example}, got {spec!r}")
    kinds = [k for k in spec if k in KINDS]
    if len(kinds) > 1:
        raise ValueError(f"{where}: {key} gives {len(kinds)} kinds ({', '.join(kinds)}); give one")
    unknown = [str(k) for k in spec if k not in KINDS and k not in ("step", "log")]
    if unknown or not kinds:
        bad = unknown[0] if unknown else None
        what = f"unknown kind {bad!r}{did_you_mean(bad, KINDS)}" if bad else "no kind given"
        raise ValueError(f"{where}: {key}: {what}. Kinds: {', '.join(KINDS)}, e.g. {example}")
    kind = kinds[0]
    for option in ("step", "log"):
        if option in spec and option not in OPTIONS[kind]:
            takes = [k for k, v in OPTIONS.items() if option in v]
            raise ValueError(f"{where}: {key}: {kind} takes no {option!r} (only {' and '.join(takes)} do)")
    return kind


def _number(value: Any, key: str, where: str, whole: bool) -> float | int:
    """A bound as a number. YAML reads ``1e-5`` (no dot) as text, so numeric text is accepted."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{where}: {key}: {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {key}: {value!r} is not a finite number")
    if whole:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{where}: {key}: int ranges take whole numbers, got {value!r}")
        return int(value)
    return float(value)


def _param(key: str, spec: Any, where: str) -> Param:
    declared = _check_key(key, where)
    kind = _kind(key, spec, where)
    fits = KINDS_FOR_TYPE.get(declared, ("choice",) if declared != "any" else KINDS)
    if kind not in fits:
        raise ValueError(
            f"{where}: {key} holds {declared} values, which a {kind} range cannot give; use "
            f"{' or '.join(fits)}"
        )
    values = spec[kind]
    if kind == "choice":
        return Param(key, kind, choices=_choices(key, values, declared, where))
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError(f"{where}: {key}: {kind} takes [low, high], got {values!r}")
    whole = kind == "int"
    low, high = (_number(v, key, where, whole) for v in values)
    if low > high:
        raise ValueError(f"{where}: {key}: the range [{low}, {high}] is reversed; write [{high}, {low}]")
    if low == high:
        raise ValueError(
            f"{where}: {key}: the range [{low}, {high}] is empty (one value); fix it with --set {key}={low} "
            "instead of searching it"
        )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"{where}: {key}: log must be true or false, got {log!r}")
    if (kind == "log_uniform" or log) and low <= 0:
        raise ValueError(f"{where}: {key}: a log scale needs low > 0, got [{low}, {high}]")
    step = spec.get("step")
    if step is not None:
        step = _number(step, key, where, whole)
        if step <= 0:
            raise ValueError(f"{where}: {key}: step must be > 0, got {step}")
        if log:
            raise ValueError(f"{where}: {key}: an int range takes either log: true or a step, not both")
        span = (high - low) / step
        if abs(span - round(span)) > 1e-9:
            raise ValueError(f"{where}: {key}: high - low ({high - low:g}) must be a multiple of step {step}")
    return Param(key, kind, low, high, step, bool(log))


def _choices(key: str, values: Any, declared: str, where: str) -> tuple[Any, ...]:
    if not isinstance(values, list):
        raise ValueError(f"{where}: {key}: choice takes a list of values, got {values!r}")
    if len(values) < 2:
        raise ValueError(
            f"{where}: {key}: choice needs at least two values, got {values!r}"
            + (f"; fix one with --set {key}={values[0]}" if values else "")
        )
    out = []
    for v in values:
        if isinstance(v, (dict, list)):
            raise ValueError(
                f"{where}: {key}: choice values must be plain values (text, numbers, true/false)"
            )
        if isinstance(v, str) and declared in ("int", "float", "bool"):
            v = parse_text(v, declared, f"{where}: {key}")  # YAML's 1e-3 text -> 0.001
        out.append(v)
    if len(set(map(repr, out))) != len(out):
        raise ValueError(f"{where}: {key}: choice lists a value twice: {values!r}")
    return tuple(out)


# ---- against the recipe --------------------------------------------------------------------------
def check_space(space: Space, base: dict[str, Any], overrides: list[str]) -> None:
    """Every extreme of every key, then every combination of them, must make a valid config."""
    where = space.source
    for item in overrides:
        dotted = item.split("=", 1)[0].strip()
        for key in space.keys:
            if key == dotted or key.startswith(dotted + ".") or dotted.startswith(key + "."):
                raise ValueError(
                    f"{where}: {key} is searched by the space and also fixed with --set {item}; drop one of them"
                )
    for p in space.params:
        for value in p.extremes():
            _valid(base, {p.key: value}, where, p)
        _check_machine(p, where)
    grid = [[(p.key, v) for v in p.extremes()] for p in space.params]
    if len(space.params) > 1 and math.prod(len(g) for g in grid) <= MAX_COMBINATIONS:
        for combo in itertools.product(*grid):
            _valid(base, dict(combo), where)


def _valid(base: dict[str, Any], values: dict[str, Any], where: str, param: Param | None = None) -> None:
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
    try:
        config = config_from_dict(apply_values(base, values), "recipe")
        if "model.name" in values:
            from chestxai.models.registry import MODELS

            MODELS.get(config.model.name)
    except (ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        what = f"{param.key} ({param.describe()}) at {shown}" if param else f"the combination {shown}"
        raise ValueError(f"{where}: {what} does not fit the recipe: {msg}") from None


# ---- keys that name this machine -----------------------------------------------------------------
#: filled in by each run, never chosen: searching them would search nothing (or break the run)
RUNTIME_KEYS = {"train.precision": "train.amp", "data.cache_dir": "data.cache"}
#: folders a trial reads: each searched value must exist here before the first trial
FOLDER_KEYS = ("data.root",)


def _check_machine(p: Param, where: str) -> None:
    """Values of the keys that describe the machine (devices, folders) must work here, before the
    first trial: a CUDA device on a CPU machine, or a missing folder, used to fail in every trial
    that drew it - after the study had started - rather than here."""
    if p.key in RUNTIME_KEYS:
        raise ValueError(
            f"{where}: {p.key} is filled in at run time and cannot be searched; search {RUNTIME_KEYS[p.key]} instead"
        )
    for value in p.extremes() if p.kind == "choice" else ():
        problem = None
        if p.key == "train.device":
            problem = device_problem(str(value))
        elif p.key in FOLDER_KEYS and value and not Path(str(value)).expanduser().is_dir():
            problem = "no such folder here"
        if problem:
            raise ValueError(f"{where}: {p.key}: the choice {value!r} cannot run on this machine ({problem})")


def device_problem(name: str) -> str | None:
    """Why ``name`` (a syntactically valid device) is not usable on this machine, or None."""
    import torch

    from chestxai.devices import pick_device

    try:
        device = pick_device(name, "train.device")
    except (ValueError, RuntimeError) as exc:
        return str(exc)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"this machine has {torch.cuda.device_count()} CUDA device(s)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available here"
    return None

"""An experiment file (``chestxai experiment FILE.yaml``): named runs to train, evaluate and compare.

::

    name: siim_architectures          # optional: the file's stem; output folder runs/<name>/
    description: seed 000, VGG vs ResNets on balanced SIIM splits
    set: {train.epochs: 20}           # optional: applied to every run (a mapping or ["k=v", ...])
    evaluate: {threshold_policy: youden, n_boot: 1000}
    compare: {n_boot: 1000, speed: true}
    runs:
      - name: resnet34
        recipe: siim_resnet34         # a shipped recipe's name, or a path (relative to this file)
      - name: vgg16
        recipe: siim_resnet34
        set: {model.name: vgg16}
      - name: ensemble
        ensemble: [resnet34, vgg16]   # earlier runs, averaged with weights fitted on val

Everything is checked before any run starts, so that a typo fails in a second and not after the
third model has trained: unknown keys (with the closest valid one), missing recipes, duplicate or
invalid names, ensembles of unknown or later runs, and every run's full config (each recipe with
its overrides goes through :func:`chestxai.config.load_config`). Overrides apply in the order
recipe < experiment ``set`` < run ``set`` < command-line ``--set``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chestxai.checks import check_keys, check_run_name
from chestxai.config import RunConfig, apply_overrides, apply_values, config_from_dict, recipe_path
from chestxai.registry import did_you_mean
from chestxai.yamlsafe import load_yaml_file

TOP_KEYS = ("name", "description", "set", "evaluate", "compare", "runs")
RUN_KEYS = ("name", "recipe", "set", "ensemble", "note")
EVALUATE_KEYS = {"threshold_policy": str, "n_boot": int}
COMPARE_KEYS = {"n_boot": int, "speed": bool}


Layer = tuple[dict[str, Any], list[str]]  # typed mapping overrides, then "k=v" text overrides


@dataclass
class RunSpec:
    """One entry of ``runs``: a recipe run (``config`` built) or an ensemble of earlier runs."""

    name: str
    recipe: str = ""  # the recipe file as resolved
    overrides: list[str] = field(default_factory=list)  # every override as "k=v" text, in order applied
    members: list[str] = field(default_factory=list)  # ensemble: names of earlier runs
    note: str = ""
    config: RunConfig | None = None

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    def fingerprint(self) -> dict[str, Any]:
        """What decides a run's result (taken before training fills in ``data.cache_dir``): a
        finished run whose fingerprint differs was made with other settings. Not the recipe's
        path: the same settings read from another copy of the recipe are the same run."""
        if self.is_ensemble:
            return {"ensemble": list(self.members)}
        assert self.config is not None
        resolved = self.config.to_dict()
        resolved.pop("run_dir", None)
        resolved["train"].pop("device", None)  # where it runs does not change what it is
        return {"config": resolved}


@dataclass
class Experiment:
    name: str
    path: Path
    description: str
    runs: list[RunSpec]
    evaluate: dict[str, Any]
    compare: dict[str, Any]

    def run(self, name: str) -> RunSpec:
        return next(r for r in self.runs if r.name == name)


def _overrides(raw: Any, where: str) -> Layer:
    """``set`` as a mapping (typed YAML values) or a list of ``"section.key=value"`` strings."""
    if raw is None:
        return {}, []
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items()}, []
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return {}, list(raw)
    raise ValueError(
        f"{where}: 'set' must be a mapping (train.lr: 0.001) or a list of 'train.lr=0.001' strings"
    )


def _options(raw: Any, kinds: dict[str, type], where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping with keys {', '.join(kinds)}")
    check_keys(raw, kinds, where)
    for key, value in raw.items():
        kind = kinds[key]
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise ValueError(f"{where}.{key} must be a {kind.__name__}, got {value!r}")
        if kind is int and value < 1:
            raise ValueError(f"{where}.{key} must be >= 1, got {value!r}")
    return dict(raw)


def _recipe(text: Any, folder: Path, where: str) -> Path:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: 'recipe' must be a recipe name or a path")
    local = folder / text
    if local.is_file():
        return local
    try:
        return recipe_path(text)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{where}: {exc}") from None


def _build(recipe: Path, layers: list[Layer], pinned: dict[str, Any], where: str) -> RunConfig:
    """The recipe, then each layer of overrides in order, then the run's own name and folder."""
    try:
        raw = load_yaml_file(recipe) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{recipe}: a recipe must be a YAML mapping with sections data/model/train")
        for values, texts in layers:
            raw = apply_overrides(apply_values(raw, values), texts)
        return config_from_dict(apply_values(raw, pinned), str(recipe))
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _as_text(layers: list[Layer]) -> list[str]:
    return [t for values, texts in layers for t in [*(f"{k}={v}" for k, v in values.items()), *texts]]


def load_experiment(
    path: str | Path, out: Path | None = None, cli_set: list[str] | None = None, device: str | None = None
) -> Experiment:
    """Read and check an experiment file; every run's config is built with its folder ``out/<name>``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file {path} does not exist")
    raw = load_yaml_file(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: an experiment file is a mapping with a 'runs' list")
    check_keys(raw, TOP_KEYS, where)
    name = check_run_name(str(raw.get("name") or path.stem))
    entries = raw.get("runs")
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f"{where}: 'runs' must be a non-empty list of runs (name + recipe, or name + ensemble)"
        )
    common = _overrides(raw.get("set"), where)
    folder = Path(out) if out is not None else Path("runs") / name
    runs: list[RunSpec] = []
    for i, entry in enumerate(entries):
        at = f"{where} runs[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{at}: each run is a mapping with 'name' and 'recipe' (or 'ensemble')")
        check_keys(entry, RUN_KEYS, at)
        if "name" not in entry:
            raise ValueError(f"{at}: a run needs a 'name' (its folder under the experiment's output)")
        if not isinstance(entry["name"], str) or not entry["name"].strip():
            raise ValueError(
                f"{at}: 'name' must be a text name (its folder), got {entry['name']!r}; "
                f"write e.g. name: run{i + 1}"
            )
        try:
            run_name = check_run_name(str(entry["name"]))
        except ValueError as exc:
            raise ValueError(f"{at}: {exc}") from None
        at = f"{where} run {run_name!r}"
        if any(r.name == run_name for r in runs):
            raise ValueError(f"{at}: the name is used twice; every run needs its own name")
        if ("recipe" in entry) == ("ensemble" in entry):
            raise ValueError(
                f"{at}: give either 'recipe' (a run to train) or 'ensemble' (earlier runs), not both"
            )
        spec = RunSpec(run_name, note=str(entry.get("note") or ""))
        if "ensemble" in entry:
            spec.members = _members(entry["ensemble"], runs, at)
            if "set" in entry:
                raise ValueError(f"{at}: an ensemble trains nothing, so it takes no 'set'")
        else:
            recipe = _recipe(entry["recipe"], path.parent, at)
            layers = [common, _overrides(entry.get("set"), at), ({}, list(cli_set or []))]
            pinned = {"run_dir": str(folder / run_name), "name": run_name, "train.device": device}
            spec.recipe, spec.overrides = str(recipe), _as_text(layers)
            spec.config = _build(recipe, layers, pinned, at)
        runs.append(spec)
    return Experiment(
        name=name,
        path=path,
        description=str(raw.get("description") or ""),
        runs=runs,
        evaluate=_options(raw.get("evaluate"), EVALUATE_KEYS, f"{where} evaluate"),
        compare=_options(raw.get("compare"), COMPARE_KEYS, f"{where} compare"),
    )


def _members(raw: Any, earlier: list[RunSpec], where: str) -> list[str]:
    if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(m, str) for m in raw):
        raise ValueError(f"{where}: 'ensemble' must list two or more names of earlier runs")
    if len(set(raw)) != len(raw):
        raise ValueError(f"{where}: 'ensemble' names a run twice: {raw}")
    known = {r.name: r for r in earlier}
    for member in raw:
        if member not in known:
            hint = did_you_mean(member, known)
            raise ValueError(
                f"{where}: ensemble member {member!r} is not an earlier run{hint}; "
                f"earlier runs: {', '.join(known) or 'none'}"
            )
        if known[member].is_ensemble:
            raise ValueError(f"{where}: {member!r} is itself an ensemble; list its members instead")
    return list(raw)

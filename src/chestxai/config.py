"""Typed run configuration: YAML recipe + flag overrides -> validated dataclasses.

A recipe is a YAML file with the sections below; any key can also be set from the command line
(``--set train.lr=3e-4``) or by the dedicated flags of ``chestxai train``. Unknown keys are errors
that name the closest valid key, because a misspelt key silently ignored is a wasted GPU-day.
Every numeric value is range-checked here, before any data is read: ``grad_clip: -1`` (gradient
ascent) or ``lr: .inf`` must fail in a second, not after an epoch or never.

Command-line text is typed by the *field's declared type*, never by YAML: ``--set name=007`` is
the run name "007", ``--set data.root=/data/cxr #2`` keeps its ``#2``. Recipes are read by a YAML
loader that refuses anchors and aliases, so a small file cannot expand into gigabytes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from chestxai.checks import (
    DEVICE_HELP,
    check_choice,
    check_device,
    check_keys,
    check_numbers,
    check_run_name,
    parse_device,
    parse_seed,
)
from chestxai.devices import AMP_CHOICES, AMP_HELP, COMPILE_CHOICES, COMPILE_HELP, parse_amp, parse_compile
from chestxai.errors import UserError
from chestxai.flags import setting, setting_fields
from chestxai.recipes import RECIPES, list_recipes, recipe_path  # noqa: F401  (re-exported)
from chestxai.tasks import TASKS
from chestxai.yamlsafe import load_yaml_file, load_yaml_text  # also the way other modules read user YAML

#: the section save_config adds to config.yaml; accepted and ignored when that file is a recipe
ENVIRONMENT_KEY = "environment"
MAX_SIZE = 4096  # pixels: above this a cached image of a chest X-ray is a typo, not a choice
MAX_WORKERS = 1024  # prepare workers / torch threads


# ---- range checks: one rule per numeric field, checked in __post_init__ ---------------------------
Rule = tuple[Callable[[Any], bool], str]
RULES: dict[str, dict[str, Rule]] = {
    "data": {
        "size": (lambda v: 8 <= v <= MAX_SIZE, f"an integer in [8, {MAX_SIZE}]"),
        "val_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "test_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "prepare_workers": (lambda v: 0 <= v <= MAX_WORKERS, f"in [0, {MAX_WORKERS}] (0 = automatic)"),
    },
    "model": {
        "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "input_size": (lambda v: v == 0 or 8 <= v <= MAX_SIZE, f"0 (= data.size) or in [8, {MAX_SIZE}]"),
        "aux_weight": (lambda v: 0 <= v <= 100, "in [0, 100]"),
    },
    "train": {
        "epochs": (lambda v: 0 <= v <= 100_000, "in [0, 100000] (0 = score the initial model, no training)"),
        "batch_size": (lambda v: 1 <= v <= 1_000_000, "in [1, 1000000]"),
        "lr": (lambda v: 0 < v <= 10, "in (0, 10]"),
        "weight_decay": (lambda v: 0 <= v <= 10, "in [0, 10]"),
        "warmup_epochs": (lambda v: v >= 0, ">= 0 (and below train.epochs)"),
        "label_smoothing": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "grad_clip": (lambda v: v >= 0, ">= 0 (0 = off)"),
        "early_stopping": (lambda v: v >= 0, ">= 0 epochs of patience (0 = off)"),
        "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32)"),
        "threads": (lambda v: 0 <= v <= MAX_WORKERS, f"in [0, {MAX_WORKERS}] (0 = torch's default)"),
        "max_steps_per_epoch": (lambda v: v >= 0, ">= 0 (0 = full epoch)"),
    },
}


def _check_numbers(obj: Any, section: str) -> None:
    check_numbers(obj, {key: (ok, valid, f"{section}.{key}") for key, (ok, valid) in RULES[section].items()})


def _check_per_class(cfg: Any) -> None:
    """``data.per_class``: split names and whole counts >= 1, on a task that has one class per image."""
    for split, count in cfg.per_class.items():
        if split not in ("train", "val", "test"):
            raise UserError(f"data.per_class: {split!r} is not a split; use train, val or test")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise UserError(f"data.per_class.{split} must be a whole number >= 1, got {count!r}")
    if cfg.per_class and cfg.task == "multilabel" and len(cfg.labels) != 1:
        raise UserError(
            "data.per_class needs one class per image: a binary/multi-class task or one data.labels"
        )


def _valid(section: str, key: str) -> str:
    """The valid range of ``section.key`` as text, for its flag's help (the rule above owns it)."""
    return RULES[section][key][1]


@dataclass
class DataConfig:
    source: str = setting(
        "medmnist", help="dataset reader (chestxai data summary --help lists them)", flag="--source"
    )
    root: str = setting(
        "", help="dataset folder; none = the chestxai cache (MedMNIST downloads there)", flag="--root"
    )
    options: dict[str, Any] = setting(factory=dict, help="reader keyword options")
    size: int = setting(
        224,
        help="cached image side in pixels (the model input size unless model.input_size)",
        flag="--size",
        bounds=_valid("data", "size"),
    )
    cache: str = setting(
        "", help="root folder for prepared caches; none = $CHESTXAI_CACHE/prepared", flag="--cache"
    )
    cache_dir: str = setting("", help="filled in at run time: the prepared cache this run used")
    task: str = setting("", help="expected task; none = whatever the dataset is (a mismatch is an error)")
    labels: list[str] = setting(factory=list, help="train on these labels only ([] = all)")
    val_fraction: float = setting(0.1, help="validation share, used only when the source defines no split")
    test_fraction: float = setting(0.2, help="test share, used only when the source defines no split")
    balance: str = setting("none", help="none | undersample (majority class, train split only)")
    # images of every class per split, drawn instead of a fraction: {val: 60, test: 60} (data/splits.py)
    per_class: dict[str, int] = setting(factory=dict, help="images of every class per split, e.g. {val: 60}")
    prepare_workers: int = setting(0, help="prepare() workers (0 = automatic)")

    def __post_init__(self) -> None:
        if self.task and self.task not in TASKS:
            raise UserError(f"data.task must be one of {TASKS} (or empty), got {self.task!r}")
        if self.balance not in ("none", "undersample"):
            raise UserError(f"data.balance must be 'none' or 'undersample', got {self.balance!r}")
        _check_numbers(self, "data")
        _check_per_class(self)
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError(
                f"data.val_fraction + data.test_fraction must be below 1 (nothing left to train on), "
                f"got {self.val_fraction} + {self.test_fraction}"
            )


@dataclass
class ModelConfig:
    name: str = setting("resnet18", help="architecture (see `chestxai models`)", flag="--model")
    head: str = setting(
        "pooled",
        help="classification head: pooled or pcam; any registered head (checked by create_model)",
        flag="--head",
    )
    dropout: float = setting(0.0, help="dropout before the classifier; > 0 enables Monte Carlo dropout later")
    pretrained: bool = setting(
        False,
        help="ImageNet weights: the local hub/torch cache, else downloaded when online "
        "(HF_HUB_OFFLINE=1 or CHESTXAI_OFFLINE=1: never downloaded)",
        flag="--pretrained",
    )
    weights: str = setting(
        "",
        help="pretrained weights: a local timm/torchvision state dict (.pth/.bin/.safetensors), or "
        "torchxrayvision chest X-ray weights as xrv:densenet121-res224-all, xrv:resnet50-res512-all or "
        "xrv:PATH (implies pretrained)",
        flag="--weights",
    )
    freeze_backbone: bool = setting(False, help="train the head only")
    input_size: int = setting(0, help="model input side in pixels (0 = data.size)")
    aux: str = setting(
        "", help='auxiliary task: a cache index column (e.g. "view") predicted by a second head'
    )
    aux_weight: float = setting(0.3, help="weight of the auxiliary loss")
    published_head: bool = setting(
        False,
        help="with --weights xrv:...: start from torchxrayvision's own classifier for the dataset's findings "
        "(matched by name) instead of a new head; with --epochs 0 the published model as it is",
        flag="--published-head",
    )

    def __post_init__(self) -> None:
        _check_numbers(self, "model")


@dataclass
class TrainConfig:
    epochs: int = setting(
        10,
        help="training epochs",
        flag="--epochs",
        bounds=_valid("train", "epochs"),
    )
    batch_size: int = setting(
        64, help="images per training step", flag="--batch-size", bounds=_valid("train", "batch_size")
    )
    lr: float = setting(1e-3, help="peak learning rate", flag="--lr", bounds=_valid("train", "lr"))
    weight_decay: float = setting(1e-4, help="decoupled weight decay (adamw) or L2 (adam)")
    optimizer: str = setting("adamw", help="adam | adamw", choices=("adam", "adamw"))
    schedule: str = setting(
        "cosine", help="cosine | onecycle | constant", choices=("cosine", "onecycle", "constant")
    )
    warmup_epochs: float = setting(0.0, help="linear warm-up epochs (cosine only)")
    label_smoothing: float = setting(0.0, help="label smoothing of the loss")
    class_weights: bool = setting(
        False, help="pos_weight (binary/multi-label) or class weights (multi-class)"
    )
    sampler: str = setting(
        "shuffle", help="shuffle | weighted (oversample rare classes)", choices=("shuffle", "weighted")
    )
    # a recipe's true/false still reads (as on/off); auto decides by the device (devices.choose_precision).
    # Off unless a recipe asks: mixed precision moves a run's figures (the quickstart's were measured in
    # float32), so the large-data recipes opt in with auto and the small ones stay bit-stable.
    amp: str = setting(
        "off",
        help=AMP_HELP + " (default off; the NIH, CheXpert, SIIM and COVID recipes say auto)",
        flag="--amp",
        choices=AMP_CHOICES,
        switch=("on", "off"),
    )
    precision: str = setting("", help="filled in at run time: float32, bfloat16 or float16 as trained")
    # Both off by default (docs/BENCHMARKS.md, "GPU suite"): on 2 CPU cores compile gained nothing
    # for resnet50 after ~1 min of compiling, channels_last 1.35x for densenet121 only (one short
    # measurement); benchmarks/gpu_suite.py measures both in the loop on a GPU.
    channels_last: bool = setting(
        False, help="model and input batches in channels_last memory format (NHWC; faster convolutions "
        "with tensor cores under mixed precision)"
    )  # fmt: skip
    compile: str = setting("off", help=COMPILE_HELP, choices=COMPILE_CHOICES)
    grad_clip: float = setting(0.0, help="max gradient norm; 0 = off")
    early_stopping: int = setting(0, help="patience in epochs on validation AUC; 0 = off")
    augment: bool = setting(True, help="training-time augmentation")
    seed: int = setting(0, help="training seed", flag="--seed", parse=parse_seed)
    device: str = setting("auto", help=DEVICE_HELP, flag="--device", parse=parse_device)
    threads: int = setting(0, help="torch CPU threads; 0 = torch's default")
    max_steps_per_epoch: int = setting(0, help="cap on steps per epoch (for smoke tests); 0 = full epoch")

    def __post_init__(self) -> None:
        self.amp = parse_amp(self.amp)  # YAML's true/false arrive as text (the field is str)
        self.compile = parse_compile(self.compile)
        for s in setting_fields(TrainConfig):  # the choices are declared once, on the fields
            if s.spec is not None and s.spec.choices:
                check_choice("train", s.key, getattr(self, s.key), s.spec.choices)
        _check_numbers(self, "train")
        if self.warmup_epochs and self.epochs and self.warmup_epochs >= self.epochs:  # 0 epochs: no schedule
            raise UserError(
                f"train.warmup_epochs must be below train.epochs ({self.epochs}), got {self.warmup_epochs}"
            )
        check_device(self.device, "train.device")


@dataclass
class RunConfig:
    name: str = setting(
        "run",
        help="run name: one folder name (run directory runs/<name>)",
        flag="--name",
        parse=check_run_name,
    )
    run_dir: str = setting(
        "",
        help="folder of the new run, when not runs/<name> (an output: the run a command reads is its "
        "positional RUN)",
        flag="--run-dir",
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # MLflow only when asked: an installed mlflow (the dev stack has it) used to switch tracking on
    # unasked (runs/mlflow.db, INFO lines); a --tracking-uri is asking too
    track: bool = setting(
        False,
        help="also log the run to MLflow (pip install 'chestxai[track]'); --tracking-uri implies it",
        flag="--track",
    )
    tracking_uri: str = setting(
        "",
        help="MLflow tracking URI (implies --track); none = a local store beside the runs",
        flag="--tracking-uri",
    )

    def __post_init__(self) -> None:
        check_run_name(self.name)
        if "\0" in self.run_dir:
            raise UserError(f"run_dir {self.run_dir!r} contains a NUL byte")

    @property
    def tracking(self) -> bool:
        """MLflow tracking asked for: ``track: true`` / ``--track``, or a ``tracking_uri``."""
        return bool(self.track or self.tracking_uri)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# ---- typing values by the declared field type ----------------------------------------------------
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _coerce(value: Any, type_name: str, where: str) -> Any:
    """Convert ``value`` to the field's declared type (YAML reads ``3e-4`` as a string)."""
    try:
        if type_name == "float" and not isinstance(value, bool):
            return float(value)
        if type_name == "int" and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise UserError("not a whole number")
            return int(value)
        if type_name == "bool":
            if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
                return value.strip().lower() in TRUE
            if not isinstance(value, bool):
                raise UserError("expected true/false, yes/no or 1/0")
        if type_name == "str":
            if isinstance(value, (dict, list)):
                raise UserError("expected text, not a list or mapping")
            return "" if value is None else str(value)
        if type_name.startswith("list") and not isinstance(value, list):
            if isinstance(value, dict):
                raise UserError("expected a list")
            return [value] if value not in (None, "") else []
        if type_name.startswith("list"):
            bad = [v for v in value if isinstance(v, (dict, list))]
            if bad:
                raise UserError(f"list items must be plain values, got {bad[0]!r}")
        if type_name.startswith("dict") and not isinstance(value, dict):
            raise UserError("expected a mapping")
    except (TypeError, ValueError, OverflowError) as exc:
        raise UserError(f"{where}: {value!r} is not a valid {type_name} ({exc})") from None
    return value


def field_type(dotted: str) -> str | None:
    """The declared type of ``section.key`` / ``key`` (``"any"`` inside a mapping), None if unknown."""
    parts = dotted.split(".")
    if parts[0] in SECTIONS:
        cls, key, rest = SECTIONS[parts[0]], (parts[1] if len(parts) > 1 else ""), parts[2:]
    else:
        cls, key, rest = RunConfig, parts[0], parts[1:]
    declared = {f.name: str(f.type) for f in fields(cls) if f.name not in SECTIONS}.get(key)
    if declared is None or not rest:
        return declared
    return "any" if declared.startswith("dict") else None


def parse_text(text: str, type_name: str | None, where: str) -> Any:
    """Command-line text -> a value of the declared type. Text fields get the text as given."""
    if type_name in (None, "str"):
        return text
    if type_name in ("int", "float", "bool"):
        return _coerce(text.strip(), type_name, where)
    stripped = text.strip()
    if type_name.startswith("list") and not stripped.startswith("["):
        return [stripped] if stripped else []
    if type_name.startswith("dict") and not stripped:
        return {}
    return load_yaml_text(text, where) if stripped else ""


def _set(raw: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    parts = dotted.strip().split(".")
    if not all(parts):
        raise UserError(f"{where}: {dotted!r} is not a key like section.key (e.g. train.lr)")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"{where}: {part!r} is not a section")
    node[parts[-1]] = value


def _copy(raw: dict[str, Any] | None) -> dict[str, Any]:
    return copy.deepcopy(dict(raw or {}))  # never mutate the caller's (or a nested) mapping


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (``--set``) to a raw config dict, typed by the field."""
    raw = _copy(raw)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r} must look like section.key=value (e.g. train.lr=3e-4)")
        dotted, text = item.split("=", 1)
        where = f"--set {item!r}"
        _set(raw, dotted, parse_text(text, field_type(dotted.strip()), where), where)
    return raw


def apply_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Apply already-typed values (a flag's argparse result) by dotted key; None means unset."""
    raw = _copy(raw)
    for dotted, value in values.items():
        if value is not None:
            _set(raw, dotted, value, f"flag for {dotted}")
    return raw


# ---- building and validating ---------------------------------------------------------------------
def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    check_keys(values, cls, where)
    types = {f.name: str(f.type) for f in fields(cls)}
    coerced = {k: _coerce(v, types[k], f"{where} {k}") for k, v in values.items()}
    try:
        return cls(**coerced)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def config_from_dict(raw: dict[str, Any], where: str = "config") -> RunConfig:
    """Build and validate a RunConfig; ``where`` names the source (file) in error messages."""
    raw = dict(raw or {})
    raw.pop(ENVIRONMENT_KEY, None)  # recorded by save_config; describes a past run, sets nothing
    check_keys(raw, RunConfig, where)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise UserError(f"{where}: section {key!r} must be a mapping, got {type(value).__name__}")
            kwargs[key] = _build(SECTIONS[key], value, f"{where} [{key}]")
        else:
            kwargs[key] = _coerce(value, field_type(key) or "str", f"{where} {key}")  # track: a bool
    try:
        return RunConfig(**kwargs)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def load_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> RunConfig:
    """Read a recipe (or start from defaults when ``path`` is None), then apply the overrides.

    ``values`` (dotted key -> typed value, from dedicated flags) are applied first, then
    ``overrides`` (``--set key=value`` text), so an explicit ``--set`` wins over a flag.
    """
    raw: dict[str, Any] = {}
    where = "command line"
    if path:
        path = recipe_path(path)
        raw = load_yaml_file(path) or {}
        if not isinstance(raw, dict):
            raise UserError(f"{path}: a recipe must be a YAML mapping with sections data/model/train")
        where = str(path)
    raw = apply_overrides(apply_values(raw, values or {}), overrides or [])
    return config_from_dict(raw, where)


def save_config(config: RunConfig, path: str | Path, environment: dict[str, Any] | None = None) -> None:
    """Write the resolved config plus the environment it runs in (see chestxai.environment)."""
    from chestxai.atomic import write_text
    from chestxai.environment import capture_environment

    if environment is None:
        environment = capture_environment(config.train.device, seed=config.train.seed)
    data = {**config.to_dict(), ENVIRONMENT_KEY: environment}
    write_text(path, yaml.safe_dump(data, sort_keys=False))

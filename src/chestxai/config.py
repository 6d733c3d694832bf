"""Typed run configuration: YAML recipe + flag overrides -> validated dataclasses.

A recipe is a YAML file with the sections below; any key can also be set from the command line
(``--set train.lr=3e-4``) or by the dedicated flags of ``chestxai train``. Unknown keys are errors
that name the closest valid key, because a misspelt key silently ignored is a wasted GPU-day.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

TASKS = ("", "binary", "multiclass", "multilabel")


@dataclass
class DataConfig:
    source: str = "medmnist"  # reader name (chestxai data summary --help lists them)
    root: str = ""  # dataset location; "" = the chestxai cache (MedMNIST downloads there)
    options: dict[str, Any] = field(default_factory=dict)  # reader keyword options
    size: int = 224  # cached image side in pixels (the model input size unless model.input_size)
    cache: str = ""  # root for prepared caches; "" = $CHESTXAI_CACHE/prepared
    cache_dir: str = ""  # filled in at run time: the prepared cache this run used
    task: str = ""  # expected task; "" = whatever the dataset is. A mismatch is an error.
    labels: list[str] = field(default_factory=list)  # train on these labels only ([] = all)
    val_fraction: float = 0.1  # used only when the source defines no split
    test_fraction: float = 0.2
    balance: str = "none"  # "none" | "undersample" (majority class, train split only)
    prepare_workers: int = 0  # prepare() workers (0 = automatic)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"data.task must be one of {TASKS[1:]} (or empty), got {self.task!r}")
        if self.balance not in ("none", "undersample"):
            raise ValueError(f"data.balance must be 'none' or 'undersample', got {self.balance!r}")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ValueError("data.val_fraction and data.test_fraction must be in [0, 1)")
        if self.size < 8:
            raise ValueError(f"data.size must be at least 8 pixels, got {self.size}")


@dataclass
class ModelConfig:
    name: str = "resnet18"  # chestxai.models.list_models()
    head: str = "pooled"  # "pooled" | "pcam"
    dropout: float = 0.0  # before the classifier; > 0 enables Monte Carlo dropout later
    pretrained: bool = False  # timm weights from a local hub/torch cache (never downloaded)
    weights: str = ""  # explicit local weights file (implies pretrained)
    freeze_backbone: bool = False
    input_size: int = 0  # 0 = data.size
    aux: str = ""  # auxiliary task: a cache index column (e.g. "view") predicted by a second head
    aux_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.head not in ("pooled", "pcam"):
            raise ValueError(f"model.head must be 'pooled' or 'pcam', got {self.head!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # "adam" | "adamw"
    schedule: str = "cosine"  # "cosine" | "onecycle" | "constant"
    warmup_epochs: float = 0.0  # linear warm-up (cosine only)
    label_smoothing: float = 0.0
    class_weights: bool = False  # pos_weight (binary/multi-label) or class weights (multi-class)
    sampler: str = "shuffle"  # "shuffle" | "weighted" (oversample rare classes)
    amp: bool = False  # bf16 autocast on CPU, fp16 + GradScaler on CUDA
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    early_stopping: int = 0  # patience in epochs on validation AUC; 0 = off
    augment: bool = True
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    threads: int = 0  # torch CPU threads; 0 = torch's default
    max_steps_per_epoch: int = 0  # cap (for smoke tests); 0 = full epoch

    def __post_init__(self) -> None:
        checks = {
            "optimizer": ("adam", "adamw"),
            "schedule": ("cosine", "onecycle", "constant"),
            "sampler": ("shuffle", "weighted"),
        }
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"train.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("train.epochs and train.batch_size must be >= 1 and train.lr > 0")


@dataclass
class RunConfig:
    name: str = "run"
    run_dir: str = ""  # "" = runs/<name>
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking_uri: str = ""  # MLflow; "" = a local store beside the runs (when mlflow is installed)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _check_keys(given: dict[str, Any], cls: type, where: str) -> None:
    valid = [f.name for f in fields(cls)]
    for key in given:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}{hint} Valid keys: {', '.join(valid)}")


def _coerce(value: Any, type_name: str, where: str) -> Any:
    """Convert ``value`` to the field's declared type (YAML reads ``3e-4`` as a string)."""
    try:
        if type_name == "float" and not isinstance(value, bool):
            return float(value)
        if type_name == "int" and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        if type_name == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
        if type_name == "str":
            return "" if value is None else str(value)
        if type_name.startswith("list") and not isinstance(value, list):
            return [value] if value not in (None, "") else []
        if type_name.startswith("dict") and not isinstance(value, dict):
            raise ValueError("expected a mapping")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {value!r} is not a valid {type_name} ({exc})") from None
    return value


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    _check_keys(values, cls, where)
    types = {f.name: str(f.type) for f in fields(cls)}
    coerced = {k: _coerce(v, types[k], f"{where} {k}") for k, v in values.items()}
    try:
        return cls(**coerced)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def config_from_dict(raw: dict[str, Any], where: str = "config") -> RunConfig:
    """Build and validate a RunConfig; ``where`` names the source (file) in error messages."""
    raw = dict(raw or {})
    _check_keys(raw, RunConfig, where)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: section {key!r} must be a mapping, got {type(value).__name__}")
            kwargs[key] = _build(SECTIONS[key], value, f"{where} [{key}]")
        else:
            kwargs[key] = _coerce(value, "str", f"{where} {key}")
    return RunConfig(**kwargs)


def parse_value(text: str) -> Any:
    """A command-line value as YAML would read it (numbers, booleans, lists)."""
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a raw config dict (before validation)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (raw or {}).items()}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value (e.g. train.lr=3e-4)")
        dotted, value = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = parse_value(value)
    return raw


RECIPES = Path(__file__).with_name("configs")


def list_recipes() -> list[str]:
    """Names of the recipes shipped with chestxai (``configs/*.yaml``)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_path(path_or_name: str | Path) -> Path:
    """A recipe file: a path, or the name of a shipped recipe (``pneumoniamnist_resnet18``)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = RECIPES / f"{path.stem}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"config file {path} does not exist; give a YAML path or one of the shipped recipes in configs/: "
        f"{', '.join(list_recipes())}"
    )


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML recipe (or start from defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    where = "command line"
    if path:
        path = recipe_path(path)
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a recipe must be a YAML mapping with sections data/model/train")
        where = str(path)
    return config_from_dict(apply_overrides(raw, overrides or []), where)


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

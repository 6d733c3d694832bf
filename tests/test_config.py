"""Recipes: every file in configs/ loads and validates; bad keys and values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from chestxai.config import config_from_dict, load_config
from chestxai.models import list_models

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_recipes() -> None:
    names = {p.stem for p in CONFIGS}
    assert {"pneumoniamnist_resnet18", "nih_densenet121", "siim_resnet34", "covid_radiography_vgg16"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_recipe_is_valid(path: Path) -> None:
    config = load_config(path)
    assert config.model.name in list_models()
    from chestxai.data.readers import list_readers

    assert config.data.source in list_readers()


def test_misspelt_key_names_the_file_and_suggests(tmp_path) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("train:\n  epohcs: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml \[train\]: unknown key 'epohcs' \(did you mean 'epochs'"):
        load_config(recipe)


def test_misspelt_section() -> None:
    with pytest.raises(ValueError, match="did you mean 'model'"):
        config_from_dict({"modle": {}})


def test_overrides_are_typed() -> None:
    config = load_config(
        None, ["train.lr=3e-4", "train.amp=true", "data.size=64", "data.labels=[Mass, Nodule]"]
    )
    assert config.train.lr == pytest.approx(3e-4) and config.train.amp == "on"
    assert config.data.size == 64 and config.data.labels == ["Mass", "Nodule"]


@pytest.mark.parametrize(
    "raw,match",
    [
        ({"train": {"epochs": "ten"}}, "not a valid int"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer must be one of"),
        ({"data": {"task": "regression"}}, "data.task must be one of"),
        ({"train": {"amp": "maybe"}}, "train.amp must be auto, true or false"),
    ],
)
def test_bad_values(raw, match) -> None:
    with pytest.raises(ValueError, match=match):
        config_from_dict(raw)


def test_missing_recipe_file() -> None:
    with pytest.raises(FileNotFoundError, match="configs/"):
        load_config("configs/does_not_exist.yaml")


# ---- issue 9 #5: every numeric field is range-checked up front ---------------------------------------
# (section, key, a bad value, a good edge value); the coverage test below fails when a new numeric
# field is added without a row here
NUMERIC_CASES = [
    ("data", "size", 4, 8),
    ("data", "val_fraction", 1.0, 0.0),
    ("data", "test_fraction", -0.1, 0.5),
    ("data", "prepare_workers", -1, 0),
    ("model", "dropout", 1.0, 0.0),
    ("model", "input_size", 4, 0),
    ("model", "aux_weight", -0.5, 0.0),
    ("train", "epochs", -1, 0),
    ("train", "batch_size", 0, 1),
    ("train", "lr", float("inf"), 10.0),
    ("train", "weight_decay", -1e-4, 0.0),
    ("train", "warmup_epochs", -1.0, 0.0),
    ("train", "label_smoothing", 1.5, 0.0),
    ("train", "grad_clip", -1.0, 0.0),
    ("train", "early_stopping", -1, 0),
    ("train", "seed", -1, 0),
    ("train", "threads", -2, 0),
    ("train", "max_steps_per_epoch", -5, 0),
]


def test_every_numeric_field_has_a_range_case() -> None:
    from dataclasses import fields

    from chestxai.config import SECTIONS

    numeric = {
        (s, f.name) for s, cls in SECTIONS.items() for f in fields(cls) if str(f.type) in ("int", "float")
    }
    assert numeric == {(s, k) for s, k, _, _ in NUMERIC_CASES}


@pytest.mark.parametrize("section,key,bad,good", NUMERIC_CASES, ids=lambda v: str(v))
def test_out_of_range_numbers_are_refused(section, key, bad, good) -> None:
    with pytest.raises(ValueError, match=rf"\[{section}\]: {section}\.{key} must be .*got {bad!r}"):
        config_from_dict({section: {key: bad}})
    assert getattr(getattr(config_from_dict({section: {key: good}}), section), key) == good


@pytest.mark.parametrize(
    "line",
    [
        "grad_clip: -1",
        "label_smoothing: 1.5",
        "early_stopping: -1",
        "max_steps_per_epoch: -5",
        "lr: .inf",
        "threads: -2",
        "lr: .nan",
        "weight_decay: -.inf",
    ],
)
def test_issue_values_fail_naming_file_key_and_range(tmp_path, line) -> None:
    """The values of issue 9 #5, as a recipe would write them (YAML reads .inf as a float)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"train:\n  {line}\n")
    key = line.split(":")[0]
    with pytest.raises(ValueError, match=rf"recipe.yaml \[train\]: train\.{key} must be"):
        load_config(recipe)


@pytest.mark.parametrize(
    "raw,match",
    [
        ({"train": {"epochs": 3, "warmup_epochs": 3}}, "warmup_epochs must be below train.epochs"),
        ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, "must be below 1"),
        ({"train": {"epochs": 2.5}}, "not a valid int"),
        ({"train": {"device": "off"}}, "train.device must be auto, cpu"),
        ({"train": {"device": False}}, "train.device must be auto, cpu"),
        ({"name": ["a"]}, "expected text"),
    ],
)
def test_cross_field_and_type_checks(raw, match) -> None:
    with pytest.raises(ValueError, match=match):
        config_from_dict(raw)


# ---- issue 9 #6: --set text is typed by the field's declared type, never by YAML ---------------
@pytest.mark.parametrize(
    "item,attr,expected",
    [
        ("name=007", "name", "007"),
        ("name=yes", "name", "yes"),
        ("name=null", "name", "null"),
        ("run_dir=runs/exp #2", "run_dir", "runs/exp #2"),
        ("data.root=/data/cxr #2", "data.root", "/data/cxr #2"),
        ("data.source=csv", "data.source", "csv"),
        ("model.weights=w: 1.pt", "model.weights", "w: 1.pt"),
        ("train.device=cuda:1", "train.device", "cuda:1"),
        ("train.epochs=007", "train.epochs", 7),
        ("train.lr=3e-4", "train.lr", 3e-4),
        ("train.amp=yes", "train.amp", "on"),
        ("train.amp=0", "train.amp", "off"),
        ("train.augment=No", "train.augment", False),
        ("data.labels=[Mass, Nodule]", "data.labels", ["Mass", "Nodule"]),
        ("data.labels=Mass", "data.labels", ["Mass"]),
        ("data.labels=", "data.labels", []),
        ("data.options={policy: ones}", "data.options", {"policy": "ones"}),
        ("data.options.uncertainty=ones", "data.options", {"uncertainty": "ones"}),
    ],
)
def test_set_values_follow_the_declared_type(item, attr, expected) -> None:
    config = load_config(None, [item])
    value = config
    for part in attr.split("."):
        value = getattr(value, part)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "item,match",
    [
        ("train.device=off", "train.device must be"),
        ("train.lr=inf", "train.lr must be in"),
        ("train.lr=fast", "not a valid float"),
        ("train.amp=maybe", "must be auto, true or false"),
        ("name=", "run name '' is not a valid single folder name"),
        ("name=..", "not a valid single folder name"),
        ("name=a/b", "path separator"),
        ("train.lr", "must look like section.key=value"),
        ("data.labels=[a, &x b, *x]", "anchors and aliases"),
    ],
)
def test_bad_set_values(item, match) -> None:
    with pytest.raises(ValueError, match=match):
        load_config(None, [item])


def test_typed_flag_values_are_not_reparsed() -> None:
    """Dedicated flags pass Python values: nothing in them is YAML (``#`` is no comment)."""
    config = load_config(
        None,
        ["train.lr=0.01"],
        values={"run_dir": "runs/exp #2", "name": "null", "train.lr": 0.5, "train.seed": None},
    )
    assert config.run_dir == "runs/exp #2" and config.run_path == Path("runs/exp #2")
    assert config.name == "null" and config.train.lr == 0.01  # --set wins over the flag
    assert config.train.seed == 0  # None = flag not given


def test_overrides_do_not_mutate_the_recipe() -> None:
    from chestxai.config import apply_overrides

    raw = {"data": {"options": {"a": 1}}}
    apply_overrides(raw, ["data.options.b=2"])
    assert raw == {"data": {"options": {"a": 1}}}


# ---- issue 9 #7: recipes may not use anchors/aliases ("billion laughs") ----------------------------
LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    + ["name: *i", ""]
)


def test_billion_laughs_recipe_fails_fast(tmp_path) -> None:
    import time

    recipe = tmp_path / "laughs.yaml"
    recipe.write_text(LAUGHS)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"laughs.yaml: line 1, column 4: YAML anchors and aliases"):
        load_config(recipe)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "text",
    ["train: &t {lr: 0.1}\n", "base: &b 1\ntrain: {epochs: *b}\n", "train:\n  <<: *x\n"],
)
def test_any_anchor_or_alias_is_refused(tmp_path, text) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(ValueError, match=r"r.yaml: line \d+, column \d+: "):
        load_config(recipe)


def test_malformed_yaml_is_one_line_naming_the_file(tmp_path) -> None:
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(ValueError, match=r"broken.yaml: line 3") as info:
        load_config(recipe)
    assert "\n" not in str(info.value)
    recipe.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_config(recipe)


# ---- issue 8: config.yaml records the environment and still loads as a recipe -------------------
def test_saved_config_with_environment_loads_back(tmp_path) -> None:
    from chestxai.config import load_yaml_file, save_config

    config = load_config(None, ["name=exp", "train.lr=0.01", "data.labels=[Mass]"])
    path = tmp_path / "config.yaml"
    save_config(config, path, environment={"python": "3.11.7", "packages": {"torch": "2.14.1"}, "seed": 0})
    saved = load_yaml_file(path)
    assert saved["environment"]["packages"] == {"torch": "2.14.1"}
    assert load_config(path) == config

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
    with pytest.raises(ValueError, match=r"bad.yaml \[train\]: unknown key 'epohcs'; did you mean 'epochs'"):
        load_config(recipe)


def test_misspelt_section() -> None:
    with pytest.raises(ValueError, match="did you mean 'model'"):
        config_from_dict({"modle": {}})


def test_overrides_are_typed() -> None:
    config = load_config(
        None, ["train.lr=3e-4", "train.amp=true", "data.size=64", "data.labels=[Mass, Nodule]"]
    )
    assert config.train.lr == pytest.approx(3e-4) and config.train.amp is True
    assert config.data.size == 64 and config.data.labels == ["Mass", "Nodule"]


@pytest.mark.parametrize(
    "raw,match",
    [
        ({"train": {"epochs": "ten"}}, "not a valid int"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer must be one of"),
        ({"data": {"task": "regression"}}, "data.task must be one of"),
        ({"model": {"head": "attention"}}, "model.head must be"),
        ({"train": {"amp": "maybe"}}, "not a valid bool"),
    ],
)
def test_bad_values(raw, match) -> None:
    with pytest.raises(ValueError, match=match):
        config_from_dict(raw)


def test_missing_recipe_file() -> None:
    with pytest.raises(FileNotFoundError, match="configs/"):
        load_config("configs/does_not_exist.yaml")

"""The search space: parsed, and checked against the recipe, before any trial (no training here)."""

from __future__ import annotations

import pytest

from chestxai.config import load_config
from chestxai.tune.space import SPACES, load_space, parse_space, space_path

BASE = load_config("pneumoniamnist_resnet18").to_dict()


def space(tmp_path, text: str, overrides: list[str] | None = None):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_space(path, BASE, overrides)


def test_a_valid_space_suggests_each_kind(tmp_path):
    import optuna

    s = space(
        tmp_path,
        "train.lr: {log_uniform: [1e-5, 1e-2]}\ntrain.batch_size: {choice: [64, 128]}\n"
        "model.dropout: {uniform: [0, 0.5], step: 0.1}\ntrain.epochs: {int: [5, 20], step: 5}\n"
        "train.max_steps_per_epoch: {int: [1, 64], log: true}\n",
    )
    assert s.params[0].low == 1e-5  # YAML reads 1e-5 (no dot) as text; the space reads it as a number
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    params = s.suggest(trial)
    assert 1e-5 <= params["train.lr"] <= 1e-2 and params["train.batch_size"] in (64, 128)
    assert params["train.epochs"] in (5, 10, 15, 20)
    assert abs(params["model.dropout"] * 10 - round(params["model.dropout"] * 10)) < 1e-9
    assert parse_space(s.canonical(), "again").canonical() == s.canonical()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "train.lrr: {log_uniform: [1e-5, 1e-2]}",
            r"space.yaml \[train\]: unknown key 'lrr' \(did you mean 'lr'\?\)",
        ),
        ("modle.dropout: {uniform: [0, 0.5]}", r"unknown key 'modle' \(did you mean 'model'\?\)"),
        ("name: {choice: [a, b]}", "cannot be searched"),
        ("train.lr: {uniform: [0.01, 0.01]}", r"train.lr: the range \[0.01, 0.01\] is empty"),
        ("train.lr: {uniform: [0.1, 0.01]}", "is reversed; write"),
        ("train.lr: {log_uniform: [0, 0.01]}", "a log scale needs low > 0"),
        ("train.lr: {loguniform: [1e-5, 1e-2]}", r"unknown kind 'loguniform' \(did you mean 'log_uniform'"),
        ("train.lr: [1e-5, 1e-2]", "must be a mapping like"),
        (
            "train.epochs: {uniform: [1, 5]}",
            "train.epochs holds int values, which a uniform range cannot give",
        ),
        ("train.lr: {choice: [fast, slow]}", "'fast' is not a valid float"),
        ("train.epochs: {int: [1.5, 5]}", "int ranges take whole numbers"),
        (
            "model.dropout: {uniform: [0, 1.5]}",
            r"model.dropout .* at model.dropout=1.5 does not fit the recipe: .*must be in \[0, 1\)",
        ),
        ("train.batch_size: {choice: [64]}", "choice needs at least two values"),
        ("train.optimizer: {choice: [adam, sgd]}", "train.optimizer must be one of"),
        ("model.name: {choice: [resnet18, resnet19]}", "resnet19"),
        ("train.epochs: {int: [1, 4], step: 2}", "must be a multiple of step"),
        ("train.lr: {uniform: [0.1, 0.2], log: true}", "uniform takes no 'log'"),
        ("", "a search space is a YAML mapping"),
        ("train.lr: &a {uniform: [0.1, 0.2]}\ntrain.weight_decay: *a", "anchors and aliases"),
    ],
)
def test_bad_space_is_one_clear_error(tmp_path, text, message):
    with pytest.raises((ValueError, KeyError), match=message):
        space(tmp_path, text)


def test_combinations_of_extremes_are_checked_against_the_recipe(tmp_path):
    """epochs 1 with the recipe's warmup of 2 epochs would fail at trial time; it fails here."""
    with pytest.raises(ValueError, match="combination train.epochs=1, train.warmup_epochs=2.0"):
        space(tmp_path, "train.epochs: {int: [1, 4]}\ntrain.warmup_epochs: {uniform: [0, 2]}\n")


def test_a_key_also_given_by_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="searched by the space and also fixed with --set train.lr=0.1"):
        space(tmp_path, "train.lr: {log_uniform: [1e-5, 1e-2]}\n", ["train.lr=0.1"])


def test_shipped_spaces_fit_their_recipes():
    shipped = sorted(SPACES.glob("*.yaml"))
    assert shipped, "configs/spaces/ ships at least one space"
    for path in shipped:
        recipe = path.read_text().splitlines()[0].split("recipe:")[-1].strip()  # "# recipe: NAME"
        load_space(path.stem, load_config(recipe).to_dict())
    with pytest.raises(FileNotFoundError, match="shipped spaces"):
        space_path("no_such_space")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "train.device: {choice: [cpu, 'cuda:99']}",
            "train.device: the choice 'cuda:99' cannot run on this machine",
        ),
        ("train.precision: {choice: [float32, bfloat16]}", "train.precision is filled in at run time"),
        ("data.cache_dir: {choice: [/tmp/a, /tmp/b]}", "data.cache_dir is filled in at run time"),
        ("data.root: {choice: [/no/such/a, /no/such/b]}", "data.root: the choice '/no/such/a' cannot run"),
        ("train.amp: {choice: [auto, maybe]}", "train.amp must be auto, true or false"),
        ("model.name: {choice: [resnet18, resnet19]}", "unknown model 'resnet19'"),
    ],
)
def test_machine_and_runtime_keys_are_checked_before_any_trial(tmp_path, text, message):
    """Issue 20 item 22: a device choice this machine cannot run (or a missing folder) only failed
    inside the trial that drew it; run-time keys were searched although every run overwrites them."""
    with pytest.raises(ValueError) as info:
        space(tmp_path, text)
    assert message in str(info.value) and str(tmp_path / "space.yaml") in str(info.value)

"""Checks that need no model or data run before anything heavy (issue 20 item 3).

A new user waited 60-100 s (data prepared, or a first experiment run trained) before an error that
the recipe alone decides: a model's minimum input size, a head the architecture does not take.
Each test stops the heavy step with a spy, so "before" is proved by what was called, not by time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chestxai.config import load_config
from chestxai.train import loop


class Heavy(AssertionError):
    pass


@pytest.fixture
def no_heavy_work(monkeypatch):
    def heavy(*a, **k):
        raise Heavy("data was prepared / a model was built before the check")

    monkeypatch.setattr(loop, "setup_data", heavy)
    monkeypatch.setattr(loop, "model_for_recipe", heavy)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["model.name=densenet121", "data.size=28"], "densenet121 needs inputs of at least 32 px"),
        (["model.name=vit_tiny", "model.head=pcam"], "pcam"),
    ],
)
def test_train_refuses_a_recipe_the_model_cannot_take_before_preparing_data(
    no_heavy_work, tmp_path, overrides, match
) -> None:
    config = load_config(None, [f"run_dir={tmp_path / 'run'}", "train.device=cpu", *overrides])
    with pytest.raises((ValueError, KeyError), match=match):
        loop.train(config, progress=False)


def test_experiment_checks_every_run_before_training_the_first(tmp_path, monkeypatch) -> None:
    from chestxai.experiment.runner import RunOptions, run_experiment

    trained: list[str] = []
    monkeypatch.setattr(loop, "train", lambda config, **k: trained.append(config.name))
    recipe = Path(__file__).resolve().parents[2] / "configs" / "pneumoniamnist_resnet18.yaml"
    file = tmp_path / "two.yaml"
    file.write_text(
        f"name: two\nruns:\n  - name: fine\n    recipe: {recipe}\n"
        f"  - name: small\n    recipe: {recipe}\n    set: {{model.name: densenet121}}\n"
    )
    with pytest.raises(ValueError, match="run 'small'.*at least 32 px.*nothing was trained"):
        run_experiment(str(file), tmp_path / "out", [], RunOptions())
    assert trained == []

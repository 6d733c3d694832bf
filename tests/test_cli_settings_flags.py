"""Issue 19: the flags of train, synth train, explain, bench lesions, tune and quickstart are generated
from the settings dataclasses' field metadata; no command restates a field by hand."""

from __future__ import annotations

import argparse

import pytest

from chestxai import cli
from chestxai.bench.settings import BenchConfig
from chestxai.commands._flags import setting_values
from chestxai.config import RULES, RunConfig
from chestxai.explain.settings import ExplainSettings
from chestxai.flags import flag_fields, flag_name, setting_fields
from chestxai.synth.settings import SynthSettings
from chestxai.tune.settings import TuneSettings

#: command -> the settings dataclass its flags are generated from
GENERATED = {
    ("train",): RunConfig,
    ("synth", "train"): SynthSettings,
    ("explain",): ExplainSettings,
    ("bench", "lesions"): BenchConfig,
    ("tune",): TuneSettings,
}


def _parser(*names: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize("command,cls", GENERATED.items(), ids=[" ".join(c) for c in GENERATED])
def test_every_flagged_field_is_a_flag_with_its_help(command, cls) -> None:
    options = _parser(*command)._option_string_actions
    fields = flag_fields(cls)
    assert len(fields) >= 9
    for s in fields:
        action = options[s.spec.flag]
        assert action.help.startswith(s.spec.help), s.key
        assert action.default is None or action.required  # None = not given: the recipe's / default


def test_help_shows_the_range_rule_of_the_field() -> None:
    """One owner per fact: the range in --help is the text of the rule that validates the value."""
    options = _parser("train")._option_string_actions
    assert RULES["train"]["lr"][1] in options["--lr"].help
    assert RULES["data"]["size"][1] in options["--size"].help


def test_every_field_has_help() -> None:
    for cls in (RunConfig, SynthSettings, ExplainSettings, TuneSettings):
        missing = [s.key for s in setting_fields(cls) if s.spec is None or not s.spec.help]
        assert missing == [], cls.__name__


@pytest.mark.parametrize(
    "argv,expected",
    [
        ([], {}),
        (
            ["--lr", "0.01", "--no-amp", "--model", "1e3"],
            {"train.lr": 0.01, "train.amp": "off", "model.name": "1e3"},
        ),
        (["--published-head", "--seed", "7"], {"model.published_head": True, "train.seed": 7}),
    ],
)
def test_train_flags_become_dotted_config_values(argv, expected) -> None:
    args = _parser("train").parse_args(argv)
    assert setting_values(args, RunConfig) == expected


def test_synth_flags_become_settings_and_amp_is_a_switch() -> None:
    base = ["--name", "x", "--domain-a", "not:Pneumonia", "--domain-b", "Pneumonia"]
    for extra, amp in (([], "auto"), (["--amp"], "on"), (["--no-amp"], "off")):
        args = _parser("synth", "train").parse_args([*base, "--blocks", "3", *extra])
        values = setting_values(args, SynthSettings)
        assert values["n_blocks"] == 3 and values.get("amp", "auto") == amp
        assert SynthSettings.from_dict(values).amp == amp


def test_synth_errors_name_the_flag_of_the_field() -> None:
    assert flag_name(SynthSettings, "n_blocks") == "--blocks"
    with pytest.raises(ValueError, match="--blocks must be in"):
        SynthSettings(domain_a="A", domain_b="B", n_blocks=99)


def test_explain_flags_build_the_settings() -> None:
    args = _parser("explain").parse_args(["run", "--no-overlays", "--no-align", "--threshold", "otsu"])
    settings = ExplainSettings(**setting_values(args, ExplainSettings))
    assert (settings.overlays, settings.align, settings.threshold) == (False, False, "otsu")
    assert ExplainSettings(**setting_values(_parser("explain").parse_args(["run"]), ExplainSettings)) == (
        ExplainSettings()
    )


def test_explain_faithfulness_choices_are_the_scores() -> None:
    from chestxai.explain.faithfulness import SCORES
    from chestxai.explain.settings import FAITHFULNESS_SCORES

    assert FAITHFULNESS_SCORES == SCORES


def test_bad_generated_values_are_usage_errors(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["explain", "run", "--threshold", "high"])
    assert info.value.code == 2
    assert "--threshold must be a fraction like 0.5 or 'otsu', got 'high'" in capsys.readouterr().err


def test_bench_required_fields_are_required_flags() -> None:
    options = _parser("bench", "lesions")._option_string_actions
    assert all(options[f].required for f in ("--source", "--root", "--out"))
    args = _parser("bench", "lesions").parse_args(
        ["--source", "nih", "--root", "r", "--out", "o", "--sanity-limit", "2"]
    )
    assert setting_values(args, BenchConfig) == {"source": "nih", "root": "r", "out": "o", "sanity": 2}


def test_quickstart_offers_train_flags_with_the_same_help() -> None:
    train, quick = _parser("train")._option_string_actions, _parser("quickstart")._option_string_actions
    for flag in ("--epochs", "--device"):
        assert quick[flag].help.split(" (")[0] == train[flag].help.split(" (")[0]


def test_tune_flags_build_the_settings_and_device_is_the_trials_train_device() -> None:
    """``chestxai tune`` passes its flags through TuneSettings' fields, not a hand-written map;
    ``--device`` is RunConfig's ``train.device`` flag, given to every trial."""
    from chestxai.commands.tune import TRIAL_FLAGS

    base = ["--config", "r.yaml", "--space", "s.yaml", "--trials", "4", "--name", "study"]
    args = _parser("tune").parse_args(base)
    assert TuneSettings(**setting_values(args, TuneSettings)) == TuneSettings(
        recipe="r.yaml", space="s.yaml", trials=4, name="study"
    )
    assert setting_values(args, RunConfig, only=TRIAL_FLAGS) == {}  # the recipe's device
    extra = ["--pruner", "halving", "--timeout", "60", "--seed", "3", "--force", "--device", "cpu"]
    args = _parser("tune").parse_args([*base, *extra])
    settings = TuneSettings(**setting_values(args, TuneSettings))
    assert (settings.pruner, settings.timeout, settings.seed, settings.force) == ("halving", 60.0, 3, True)
    assert setting_values(args, RunConfig, only=TRIAL_FLAGS) == {"train.device": "cpu"}
    options = _parser("tune")._option_string_actions
    assert all(options[f].required for f in ("--config", "--space", "--trials", "--name"))


@pytest.mark.parametrize("flag,text", [("--name", "a/b"), ("--seed", "-1"), ("--trials", "x")])
def test_bad_tune_values_are_usage_errors(flag, text, capsys) -> None:
    argv = ["tune", "--config", "r", "--space", "s", "--trials", "2", "--name", "n", flag, text]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert flag in capsys.readouterr().err

"""Issue 9 #6: ``chestxai train`` flags stay strings end to end (they were parsed as YAML)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chestxai import cli
from chestxai.commands.train import values_from_args
from chestxai.config import load_config


def _config(*argv: str):
    args = cli.build_parser().parse_args(["train", *argv])
    return load_config(args.config, list(args.set), values=values_from_args(args))


@pytest.mark.parametrize(
    "argv,attr,expected",
    [
        (["--run-dir", "runs/exp #2"], "run_dir", "runs/exp #2"),
        (["--root", "/data/cxr #2"], "data.root", "/data/cxr #2"),
        (["--name", "null"], "name", "null"),
        (["--name", "007"], "name", "007"),
        (["--name", "yes"], "name", "yes"),
        (["--model", "1e3"], "model.name", "1e3"),
        (["--tracking-uri", "file:./mlruns #x"], "tracking_uri", "file:./mlruns #x"),
        (["--device", "cuda:1"], "train.device", "cuda:1"),
        (["--seed", "3"], "train.seed", 3),
        (["--lr", "0.01", "--set", "train.lr=0.02"], "train.lr", 0.02),
        (["--no-amp"], "train.amp", "off"),
    ],
)
def test_flags_reach_the_config_unchanged(argv, attr, expected) -> None:
    value = _config(*argv)
    for part in attr.split("."):
        value = getattr(value, part)
    assert value == expected and type(value) is type(expected)


def test_name_null_trains_into_runs_null_not_runs() -> None:
    assert _config("--name", "null").run_path == Path("runs") / "null"
    assert _config("--run-dir", "runs/exp #2").run_path == Path("runs/exp #2")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--device", "off"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'off'"),
        (["--name", ""], "is not a valid single folder name: it is empty"),
        (["--name", "."], "'.' and '..' are not folder names"),
        (["--name", ".."], "'.' and '..' are not folder names"),
        (["--name", "a/b"], "path separator"),
        (["--seed", "-1"], "--seed must be in [0, 2**32)"),
    ],
)
def test_bad_flags_are_usage_errors(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["train", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_out_of_range_flag_fails_before_training(capsys) -> None:
    assert cli.main(["train", "--lr", "inf"]) == 2
    assert "train.lr must be in (0, 10], got inf" in capsys.readouterr().err


def test_quickstart_run_dir_and_device_stay_strings(monkeypatch, tmp_path, capsys) -> None:
    """``quickstart --run-dir "…/exp #2"`` used to become "…/exp" (YAML comment) on its way to train."""
    import chestxai.evaluation.evaluate as evaluate
    import chestxai.report.build as build
    import chestxai.train.loop as loop

    seen = {}
    metric = {"value": 0.5, "ci": [0.4, 0.6]}
    monkeypatch.setattr(
        loop, "train", lambda config, progress=True: seen.update(config=config, progress=progress)
    )
    monkeypatch.setattr(
        evaluate,
        "evaluate_run",
        lambda run, **kw: (
            seen.update(eval_kw=kw) or {"metrics": {"macro": {"roc_auc": metric, "accuracy": metric}}}
        ),
    )
    monkeypatch.setattr(build, "build_report", lambda run: run / "report.html")
    run_dir = tmp_path / "exp #2"
    argv = [
        "quickstart",
        "--run-dir",
        str(run_dir),
        "--explain-limit",
        "0",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert cli.main(argv) == 0
    config = seen["config"]
    assert config.run_path == run_dir and config.train.device == "cpu"
    assert seen["progress"] is False and seen["eval_kw"]["device"] == "cpu"

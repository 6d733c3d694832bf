"""The environment recorded in config.yaml (issue 8, reproducible figures) and shown in the report."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import torch
import yaml

from chestxai.config import load_config, load_yaml_file, save_config
from chestxai.environment import capture_environment, git_state

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_capture_environment_records_versions_device_threads_and_seed(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    env = capture_environment("auto", seed=7)
    for name in ("torch", "torchvision", "timm", "numpy", "grad-cam"):
        assert env["packages"][name] == metadata.version(name)
    assert env["device"] == "cpu" and env["device_name"]  # auto resolves as training does
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["seed"] == 7 and env["python"] and env["platform"]
    assert set(env["git"]) == {"commit", "dirty"}
    assert yaml.safe_load(yaml.safe_dump(env)) == env  # plain data only


def test_a_bad_device_string_does_not_stop_the_capture() -> None:
    env = capture_environment("no-such-device")
    assert env["device"] == "no-such-device" and env["device_name"] == "unknown"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@needs_git
def test_git_state_reports_commit_and_dirtiness(tmp_path) -> None:
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_state(pkg) == {"commit": head, "dirty": False}
    (pkg / "__init__.py").write_text("x = 2\n")
    assert git_state(pkg) == {"commit": head, "dirty": True}


@needs_git
def test_an_untracked_copy_inside_another_repo_is_unknown(tmp_path) -> None:
    """A package installed into a venv that lives inside some project must not take its commit."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "README").write_text("other project\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    pkg = tmp_path / ".venv" / "site-packages" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    assert git_state(pkg) == {"commit": "unknown", "dirty": "unknown"}
    assert git_state(tmp_path / "missing") == {"commit": "unknown", "dirty": "unknown"}


def test_save_config_records_the_environment_without_the_caller_asking(tmp_path) -> None:
    """train.loop calls save_config(config, run.config) unchanged; the environment comes along."""
    config = load_config(None, ["train.seed=5", "train.device=cpu"])
    save_config(config, tmp_path / "config.yaml")
    env = load_yaml_file(tmp_path / "config.yaml")["environment"]
    assert env["seed"] == 5 and env["device"] == "cpu"
    assert env["packages"]["torch"] == metadata.version("torch")
    assert load_config(tmp_path / "config.yaml") == config  # accepted (and ignored) as a recipe


def test_report_configuration_shows_the_environment(tmp_path) -> None:
    from chestxai.report.sections import config_section
    from chestxai.rundir import RunDir

    run = RunDir(tmp_path)
    save_config(
        load_config(None, ["name=envrun"]),
        run.config,
        environment={
            "python": "3.11.7",
            "device": "cpu",
            "packages": {"timm": "1.0.31"},
            "git": {"commit": "abc123", "dirty": True},
        },
    )
    html = config_section(run, None)
    assert "The environment these results were computed in" in html
    assert "timm" in html and "1.0.31" in html and "abc123 (uncommitted changes)" in html
    assert "environment:" not in html  # shown as the table, not repeated in the YAML dump

    run.config.write_text(yaml.safe_dump(load_config(None).to_dict()))
    assert "records no environment" in config_section(run, None)

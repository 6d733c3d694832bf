"""MLflow tracking only when asked, and a demo install without the dev stack (issue 20 item 7).

``make demo`` installed ``.[dev]`` (playwright, mlflow, torchxrayvision: a 6.8 GB venv), and an
installed mlflow switched tracking on for every run unasked (``runs/mlflow.db``, INFO lines). The
demo now installs the runtime only, and a run tracks to MLflow only with ``--track`` /
``track: true`` (or a ``--tracking-uri``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from chestxai.cli import build_parser
from chestxai.config import load_config
from chestxai.train.loop import train

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(target: str, venv: Path) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", "-B", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_demo_installs_the_runtime_only_and_make_test_the_dev_stack(tmp_path) -> None:
    demo = _dry_run("demo", tmp_path / "venv")
    assert "pip install --quiet -e ." in demo and ".[dev]" not in demo
    assert "chestxai quickstart" in demo
    assert ".[dev]" in _dry_run("test", tmp_path / "venv")


def _tiny(cache: Path, run_dir: Path, *extra: str):
    return load_config(
        None,
        [f"data.cache_dir={cache}", f"run_dir={run_dir}", "model.name=resnet18", "train.epochs=1",
         "train.batch_size=16", "train.threads=1", "train.device=cpu", *extra],
    )  # fmt: skip


@pytest.mark.real_mlflow
def test_a_run_not_asked_to_track_writes_no_mlflow_store_even_with_mlflow_installed(blob_cache, tmp_path):
    pytest.importorskip("mlflow", reason="the [track] extra (mlflow) is not installed")
    train(_tiny(blob_cache, tmp_path / "runs" / "plain"), progress=False)
    assert not (tmp_path / "runs" / "mlflow.db").exists() and not (tmp_path / "runs" / "mlartifacts").exists()
    train(_tiny(blob_cache, tmp_path / "runs" / "tracked", "track=true"), progress=False)
    assert (tmp_path / "runs" / "mlflow.db").is_file()  # asked: tracked as before


def _quickstart_config(monkeypatch, *flags: str):
    """The config quickstart trains with (training itself replaced by a stop: no model is built)."""
    seen = []

    class Stop(Exception):
        pass

    def fake_train(config, **kw):
        seen.append(config)
        raise Stop

    monkeypatch.setattr("chestxai.train.loop.train", fake_train)
    args: argparse.Namespace = build_parser().parse_args(["quickstart", "--no-progress", *flags])
    with pytest.raises(Stop):
        args.func(args)
    return seen[0]


def test_quickstart_tracks_only_with_track(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    assert _quickstart_config(monkeypatch).tracking is False
    assert _quickstart_config(monkeypatch, "--track").tracking is True

"""Two `train` into one run directory (issue 9 #3): the second fails at once, before MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chestxai.config import load_config
from chestxai.locks import LockedError, exclusive, is_locked
from chestxai.testing import blob_cache
from chestxai.train import epoch_end, loop


@pytest.fixture
def cache(tmp_path) -> Path:
    return blob_cache(tmp_path / "cache", (32, 8, 8), size=16, seed=0)


def args(cache: Path, run_dir: Path) -> list[str]:
    return [
        f"data.cache_dir={cache}",
        f"run_dir={run_dir}",
        "model.name=resnet18",
        "train.epochs=1",
        "train.batch_size=8",
        "train.max_steps_per_epoch=1",
        "train.threads=1",
    ]


def test_a_second_train_process_fails_at_once_and_touches_nothing(cache, tmp_path):
    run_dir = tmp_path / "runs" / "same"
    with exclusive(run_dir, "run directory"):  # the first training, as far as the second can tell
        cmd = [sys.executable, "-m", "chestxai", "train", "--no-progress"]
        for a in args(cache, run_dir):
            cmd += ["--set", a]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "run directory" in result.stderr and "in use by another process" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # no config, splits or weights
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # failed before opening MLflow


def test_the_run_directory_is_locked_for_the_whole_training(cache, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    seen = []
    setup, save = loop.setup_data, epoch_end.save_epoch  # the end of each epoch writes
    monkeypatch.setattr(
        loop, "setup_data", lambda *a, **k: (seen.append(is_locked(run_dir)), setup(*a, **k))[1]
    )
    monkeypatch.setattr(
        epoch_end, "save_epoch", lambda *a, **k: (seen.append(is_locked(run_dir)), save(*a, **k))[1]
    )
    loop.train(load_config(None, args(cache, run_dir)), progress=False)
    assert seen == [True, True]
    assert not is_locked(run_dir)  # released at the end
    with exclusive(run_dir, "run directory"), pytest.raises(LockedError, match="in use"):
        loop.train(load_config(None, [*args(cache, run_dir), "train.epochs=2"]), resume=True, progress=False)

"""Tune fixtures: a tiny blob cache, a recipe on it, and ways to run ``chestxai tune`` in this
process or in a subprocess (MLflow off in both, as in every test: tests/mlflow_off.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chestxai.cli import main
from chestxai.testing import blob_cache
from mlflow_off import DRIVER_PREAMBLE

SRC = Path(__file__).resolve().parents[2] / "src"
#: the subprocess: the real CLI, without MLflow (as in-process: tests/mlflow_off.py)
DRIVER = (
    DRIVER_PREAMBLE
    + """
import sys
from chestxai.cli import main
sys.exit(main(sys.argv[1:]))
"""
)
SPACE = """\
train.lr: {log_uniform: [1e-4, 1e-1]}
train.batch_size: {choice: [8, 16]}
model.dropout: {uniform: [0, 0.5]}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """``{"cache", "recipe", "space"}``: 64 blob images at 32 px (40 train / 12 val / 12 test), a
    recipe training resnet18 on it for 2 short epochs, and a 3-key space."""
    root = tmp_path_factory.mktemp("tune")
    cache = blob_cache(root / "cache", (40, 12, 12), size=32, seed=3)
    recipe = root / "recipe.yaml"
    recipe.write_text(
        "name: tiny\n"
        f"data: {{source: synthetic, cache_dir: '{cache}', size: 32}}\n"
        "model: {name: resnet18}\n"
        "train: {epochs: 2, batch_size: 8, max_steps_per_epoch: 2, threads: 1}\n"
    )
    space = root / "space.yaml"
    space.write_text(SPACE)
    return {"cache": cache, "recipe": recipe, "space": space}


def tune_args(tiny: dict[str, Path], study: Path, trials: int = 3, *extra: str) -> list[str]:
    return [
        "tune", "--config", str(tiny["recipe"]), "--space", str(tiny["space"]), "--trials", str(trials),
        "--name", study.name, "--run-dir", str(study), "--startup-trials", "1", "--n-boot", "50",
        "--no-progress", *extra,
    ]  # fmt: skip


def run_here(args: list[str]) -> int:
    return main(args)


def start(args: list[str], **env: str) -> subprocess.Popen:
    """``chestxai ARGS`` in a subprocess (stdout/stderr captured as text)."""
    full = dict(os.environ, OMP_NUM_THREADS="1", **env)
    full["PYTHONPATH"] = os.pathsep.join([str(SRC), full.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

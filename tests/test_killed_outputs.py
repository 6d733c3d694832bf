"""A killed ``uncertainty`` or ``compare`` leaves nothing that blocks its re-run (issue 20, item 22).

Each command is killed (``os._exit(137)``: no cleanup, like SIGKILL) in a subprocess after it has
written part of its outputs; the re-run must then succeed without ``--force`` and leave no
staging folder behind. Before, the partial outputs sat where the finished ones go, and the re-run
refused them as "not written by this command".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chestxai
from chestxai.cli import main
from chestxai.evaluation import evaluate_run
from chestxai.models.checkpoint import read_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.testing import write_tiny_run

SRC = str(Path(chestxai.__file__).resolve().parents[1])

#: the command, with ``module.function`` replaced by one that dies on its ``nth`` call
KILLED = """
import os, sys, importlib
module, name, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
mod = importlib.import_module(module)
real, calls = getattr(mod, name), []
def dying(*a, **k):
    calls.append(1)
    if len(calls) >= nth:
        os._exit(137)
    return real(*a, **k)
setattr(mod, name, dying)
from chestxai.cli import main
sys.exit(main(sys.argv[4:]))
"""


def run_killed(target: str, nth: int, argv: list[str]) -> int:
    module, name = target.rsplit(".", 1)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", KILLED, module, name, str(nth), *argv],
        env=env,
        capture_output=True,
        timeout=300,
    )
    return done.returncode


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("killed")
    a, _ = write_tiny_run(root / "a")
    b = root / "b"
    shutil.copytree(a, b)
    ckpt = read_checkpoint(b / "checkpoint.pt")
    ckpt["state_dict"] = {k: v * 0.9 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    save_atomic(ckpt, b / "checkpoint.pt")
    for run in (a, b):
        evaluate_run(run, n_boot=0, figures=False)
    return a, b


def test_a_killed_uncertainty_run_can_be_rerun(two_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    argv = ["uncertainty", str(run), "--method", "tta", "--passes", "2", "--n-boot", "0", "--gallery", "1"]
    argv += ["--no-progress"]
    assert run_killed("chestxai.uncertainty.stage.write_json", 1, argv) == 137  # before uncertainty.json
    assert main(argv) == 0, capsys.readouterr().err
    out = RunDir(run).uncertainty_dir("tta").root
    assert (out / "uncertainty.json").is_file() and (out / "predictions.csv").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["tta"]  # no staging folder left


def test_a_killed_comparison_can_be_rerun(two_runs, tmp_path, capsys):
    a, b = two_runs
    out = tmp_path / "cmp"
    argv = ["compare", str(a), str(b), "--out", str(out), "--n-boot", "10", "--no-speed", "--no-progress"]
    assert run_killed("chestxai.evaluation.compare.write_text", 2, argv) == 137  # after one table
    assert main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "cmp.md").is_file() and (tmp_path / "cmp.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    assert main(argv) == 0  # a finished comparison is this command's: replaced without --force


def test_a_file_compare_did_not_write_is_named_as_such(two_runs, tmp_path, capsys):
    a, b = two_runs
    (tmp_path / "cmp.csv").write_text("someone's table")
    argv = ["compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--n-boot", "10", "--no-speed"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cmp.csv exists and is not part of a finished comparison" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1

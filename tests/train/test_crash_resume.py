"""Kill training at every write point of an epoch (forced, CHESTXAI_CRASH_AT), resume, and get the
uninterrupted run's weights and history (issue 9 #1, #2 and the crash-point acceptance test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chestxai.config import load_config
from chestxai.crashpoints import ENV
from chestxai.models.checkpoint import read_checkpoint
from chestxai.testing import blob_cache
from chestxai.train.loop import train
from mlflow_off import DRIVER_PREAMBLE

EPOCHS = 3
# measured, not computed: they differ between processes
TIMING = ["epoch_time_s", "train_images_per_s", "peak_memory_mb"]
# the subprocess: the real loop, without MLflow (as in-process: tests/mlflow_off.py)
DRIVER = (
    DRIVER_PREAMBLE
    + """
import sys
from chestxai.config import load_config
from chestxai.train.loop import train
train(load_config(None, sys.argv[2:]), resume=sys.argv[1] == "resume", progress=False)
"""
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return blob_cache(tmp_path_factory.mktemp("c") / "blobs", (40, 12, 12), size=16, seed=3)


def overrides(cache: Path, run_dir: Path) -> list[str]:
    return [
        f"data.cache_dir={cache}",
        f"run_dir={run_dir}",
        "model.name=resnet18",
        "model.dropout=0.3",  # dropout draws from the global RNG: resume must replay those draws too
        f"train.epochs={EPOCHS}",
        "train.batch_size=8",
        "train.max_steps_per_epoch=2",
        "train.lr=0.01",
        "train.threads=1",
    ]


@pytest.fixture(scope="module")
def reference(cache, tmp_path_factory) -> Path:
    return train(load_config(None, overrides(cache, tmp_path_factory.mktemp("r") / "full")), progress=False)


def run_killed(cache: Path, run_dir: Path, point: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", **{ENV: point})
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")]
    )
    cmd = [sys.executable, "-c", DRIVER, "fresh", *overrides(cache, run_dir)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def assert_same_run(run: Path, reference: Path) -> None:
    for name in ("checkpoint.pt", "last.pt"):
        got, want = read_checkpoint(run / name), read_checkpoint(reference / name)
        assert got["epoch"] == want["epoch"], name
        assert got["state_dict"].keys() == want["state_dict"].keys()
        for key, tensor in want["state_dict"].items():
            assert torch.equal(got["state_dict"][key], tensor), f"{name}: {key} differs"
    got, want = pd.read_csv(run / "history.csv"), pd.read_csv(reference / "history.csv")
    pd.testing.assert_frame_equal(got.drop(columns=TIMING), want.drop(columns=TIMING))
    assert not list(run.glob(".*.tmp"))


# (crash point, n-th time reached): every write of the start and of an epoch, in epoch 1 and later.
# Epoch 1 always writes checkpoint.pt (the first epoch is the best so far); "@2" of after-best is
# the next improving epoch.
POINTS = [
    ("train:after-config", 1),
    ("train:after-splits", 1),
    ("train:after-last", 1),  # issue 9 #1: killed between last.pt and checkpoint.pt in epoch 1
    ("train:after-best", 1),
    ("train:after-history", 1),
    ("train:after-last", 2),  # issue 9 #2: history.csv not yet written for this epoch
    ("train:after-best", 2),
    ("train:after-history", 2),
    ("train:after-history", EPOCHS),  # the last write of the run: resume finds a finished run
]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "nth"), POINTS, ids=[f"{p}@{n}" for p, n in POINTS])
def test_kill_at_a_write_point_then_resume_gives_the_uninterrupted_run(
    cache, reference, tmp_path, point, nth
):
    run_dir = tmp_path / "killed"
    result = run_killed(cache, run_dir, f"{point}@{nth}")
    assert result.returncode == 137, (
        f"not killed at {point}@{nth} (rc {result.returncode}):\n{result.stderr[-2000:]}"
    )
    (run_dir / ".last.pt.leftover.tmp").write_bytes(b"half a checkpoint")  # as a kill inside a write leaves
    if (run_dir / "last.pt").exists():  # something trained: a plain restart is refused
        with pytest.raises(FileExistsError, match="--resume"):
            train(load_config(None, overrides(cache, run_dir)), progress=False)
    train(load_config(None, overrides(cache, run_dir)), resume=True, progress=False)
    assert_same_run(run_dir, reference)


def test_kill_between_last_and_best_in_epoch_1_resumes(cache, reference, tmp_path):
    """Issue 9 #1 without the slow marker: the run is resumable, and checkpoint.pt is rewritten."""
    run_dir = tmp_path / "killed"
    assert run_killed(cache, run_dir, "train:after-last@1").returncode == 137
    assert (run_dir / "last.pt").exists() and not (run_dir / "checkpoint.pt").exists()
    train(load_config(None, overrides(cache, run_dir)), resume=True, progress=False)
    assert_same_run(run_dir, reference)


def test_history_travels_inside_last_pt(reference):
    """Issue 9 #2: resume restores the history from last.pt, whatever history.csv says."""
    state = read_checkpoint(reference / "last.pt")["train_state"]
    history = pd.DataFrame(state["history"])
    pd.testing.assert_frame_equal(history, pd.read_csv(reference / "history.csv"), check_dtype=False)
    assert state["best_epoch"] == int(history.loc[history["best"] == 1, "epoch"].max())
    assert read_checkpoint(reference / "checkpoint.pt")["epoch"] == state["best_epoch"]


def test_resume_with_only_checkpoint_pt_or_nothing_trains_from_scratch(cache, reference, tmp_path):
    """An older version killed in epoch 1 left checkpoint.pt without last.pt: neither resumable
    nor restartable before. Now --resume restarts, and --resume on an empty folder starts."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "checkpoint.pt").write_bytes((reference / "checkpoint.pt").read_bytes())
    with pytest.raises(FileExistsError, match="--resume"):
        train(load_config(None, overrides(cache, legacy)), progress=False)
    train(load_config(None, overrides(cache, legacy)), resume=True, progress=False)
    assert_same_run(legacy, reference)
    empty = tmp_path / "empty"
    train(load_config(None, overrides(cache, empty)), resume=True, progress=False)
    assert_same_run(empty, reference)
    history_before = (empty / "history.csv").read_text()
    train(load_config(None, overrides(cache, empty)), resume=True, progress=False)  # finished: no-op
    assert (empty / "history.csv").read_text() == history_before


def test_history_has_no_duplicate_or_missing_epochs(reference):
    assert list(pd.read_csv(reference / "history.csv")["epoch"]) == list(range(1, EPOCHS + 1))
    assert np.isfinite(pd.read_csv(reference / "history.csv")["val_loss"]).all()


def test_leftover_temporary_files_of_killed_writes_are_removed_on_the_next_start(cache, tmp_path):
    """Issue 9, weaker: killed checkpoint writes left hidden .last.pt.*.tmp files (194 MB in one run)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ours = [run_dir / ".last.pt.k1l2.tmp", run_dir / ".checkpoint.pt.x9.tmp", run_dir / ".history.csv.a.tmp"]
    for path in ours:
        path.write_bytes(b"half written")
    other = run_dir / ".metrics.json.q.tmp"  # another stage's write in progress: not training's to remove
    other.write_bytes(b"{")
    train(load_config(None, [*overrides(cache, run_dir), "train.epochs=1"]), progress=False)
    assert not any(path.exists() for path in ours) and other.exists()


def test_a_last_pt_of_an_older_version_still_resumes(cache, reference, tmp_path):
    """Older last.pt files kept no history, monitor or best epoch: history.csv and best_auc serve."""
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    last = read_checkpoint(reference / "last.pt")
    ts = last["train_state"]
    best_auc = ts["best_score"]
    last["train_state"] = {k: ts[k] for k in ("optimizer", "scheduler", "scaler", "epoch", "bad_epochs")}
    last["train_state"]["best_auc"] = best_auc
    torch.save(last, run_dir / "last.pt")
    for name in ("checkpoint.pt", "history.csv"):
        (run_dir / name).write_bytes((reference / name).read_bytes())
    train(
        load_config(None, [*overrides(cache, run_dir), f"train.epochs={EPOCHS + 1}"]),
        resume=True,
        progress=False,
    )
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 2))
    pd.testing.assert_frame_equal(history.iloc[:EPOCHS], pd.read_csv(reference / "history.csv"))
    state = read_checkpoint(run_dir / "last.pt")["train_state"]
    assert state["epoch"] == EPOCHS + 1 and len(state["history"]) == EPOCHS + 1
    assert (
        read_checkpoint(run_dir / "checkpoint.pt")["epoch"]
        == history.loc[history["best"] == 1, "epoch"].max()
    )

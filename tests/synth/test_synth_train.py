"""CycleGAN training end to end on a tiny cache: artefacts, seeding, kill -9 + --resume, the run
directory's guards and the ``chestxai synth train`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chestxai.cli import main
from chestxai.crashpoints import ENV
from chestxai.synth.checkpoint import load_synth, read_synth
from chestxai.synth.loop import train_synth
from chestxai.synth.settings import SynthSettings
from chestxai.testing import blob_cache, write_tiny_run

EPOCHS = 3
STEPS = 2
TIMING = ["epoch_time_s", "train_images_per_s"]
LOSSES = ["g_adv", "cycle", "identity", "d"]
DRIVER = """
import sys
from chestxai.synth.loop import train_synth
from chestxai.synth.settings import SynthSettings
train_synth(SynthSettings(cache_dir=sys.argv[1], run_dir=sys.argv[2], **SETTINGS), progress=False)
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return blob_cache(tmp_path_factory.mktemp("c") / "blobs", (24, 8, 8), size=32, seed=3)


KW = dict(
    domain_a="not:Blob",
    domain_b="Blob",
    ngf=4,
    ndf=4,
    epochs=EPOCHS,
    max_steps=STEPS,
    batch_size=2,
    threads=1,
)


def settings(cache: Path, run_dir: Path, **kw) -> SynthSettings:
    return SynthSettings(cache_dir=str(cache), run_dir=str(run_dir), **{**KW, **kw})


@pytest.fixture(scope="module")
def reference(cache, tmp_path_factory) -> Path:
    return train_synth(settings(cache, tmp_path_factory.mktemp("r") / "full"), progress=False)


def assert_same_run(run: Path, reference: Path) -> None:
    got, want = read_synth(run / "last.pt"), read_synth(reference / "last.pt")
    for direction in ("a2b", "b2a"):
        for key, tensor in want[direction].items():
            assert torch.equal(got[direction][key], tensor), f"{direction}.{key} differs"
    for key, tensor in want["train_state"]["d_b"].items():
        assert torch.equal(got["train_state"]["d_b"][key], tensor)
    assert read_synth(run / "checkpoint.pt")["epoch"] == EPOCHS
    frame, ref = pd.read_csv(run / "history.csv"), pd.read_csv(reference / "history.csv")
    pd.testing.assert_frame_equal(frame.drop(columns=TIMING), ref.drop(columns=TIMING))
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch-00{e}.png" for e in (1, 2, 3)]
    assert not list(run.glob(".*.tmp"))


def test_a_run_writes_every_artefact_and_loads_back(reference, cache):
    names = {p.name for p in reference.iterdir()}
    assert {"config.yaml", "splits.csv", "checkpoint.pt", "last.pt", "history.csv", "samples"} <= names
    history = pd.read_csv(reference / "history.csv")
    assert list(history.columns) == ["epoch", *LOSSES, "lr", *TIMING]
    assert list(history["epoch"]) == [1, 2, 3] and np.isfinite(history[LOSSES].to_numpy()).all()
    # 3 epochs, decay over the last 1 (epochs // 2): constant, then 1 - k / (decay + 1)
    assert list(history["lr"]) == pytest.approx([2e-4, 2e-4, 1e-4])
    model = load_synth(reference)
    assert model.domains == {"a": "not:Blob", "b": "Blob"} and model.size == 32 and model.epoch == EPOCHS
    assert model.cache_dir == cache.resolve() and model.cache_dir_b is None
    assert set(model.generators) == {"a2b", "b2a"} and not model.generators["a2b"].training
    images = np.zeros((3, 32, 32), np.uint8)
    assert model.translate(images, "b2a").shape == (3, 32, 32)
    with pytest.raises(ValueError, match="a2b or b2a"):
        model.translate(images, "b2c")
    assert len(model.rows("a", "test")) + len(model.rows("b", "test")) == 8
    from PIL import Image

    grid = Image.open(reference / "samples" / "epoch-003.png")
    # A, A->B, A->B->A, B, B->A, B->A->B; 32 px tiles enlarged to 64 so the column names fit
    assert grid.mode == "L" and grid.size[0] == 6 * 64 + 5 * 2


def test_two_runs_with_one_seed_give_identical_first_epoch_losses(cache, reference, tmp_path):
    again = train_synth(settings(cache, tmp_path / "again", epochs=1), progress=False)
    first = pd.read_csv(again / "history.csv").iloc[0][LOSSES]
    want = pd.read_csv(reference / "history.csv").iloc[0][LOSSES]
    assert first.to_dict() == want.to_dict()
    other = train_synth(settings(cache, tmp_path / "seed1", epochs=1, seed=1), progress=False)
    assert pd.read_csv(other / "history.csv").iloc[0][LOSSES].to_dict() != want.to_dict()


def run_killed(cache: Path, run_dir: Path, point: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", **{ENV: point})
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")]
    )
    code = DRIVER.replace("SETTINGS", repr(KW))
    return subprocess.run(
        [sys.executable, "-c", code, str(cache), str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# after-last@2: epoch 2 is complete in last.pt only; step@(STEPS + 1): killed inside epoch 2
@pytest.mark.parametrize("point", ["synth:after-last@2", f"synth:step@{STEPS + 1}", "synth:after-samples@1"])
def test_kill_9_then_resume_continues_from_the_last_epoch(cache, reference, tmp_path, point):
    run_dir = tmp_path / "killed"
    result = run_killed(cache, run_dir, point)
    assert result.returncode == 137, (
        f"not killed at {point} (rc {result.returncode}):\n{result.stderr[-2000:]}"
    )
    done = read_synth(run_dir / "last.pt")["train_state"]["epoch"]
    assert done == (2 if point.startswith("synth:after-last") else 1)
    (run_dir / ".last.pt.leftover.tmp").write_bytes(b"half a checkpoint")  # as a kill inside a write leaves
    with pytest.raises(FileExistsError, match="--resume"):
        train_synth(settings(cache, run_dir), progress=False)
    train_synth(settings(cache, run_dir), resume=True, progress=False)
    assert_same_run(run_dir, reference)
    history = (run_dir / "history.csv").read_text()
    train_synth(settings(cache, run_dir), resume=True, progress=False)  # finished: nothing to train
    assert (run_dir / "history.csv").read_text() == history


def test_resume_may_not_change_the_networks(cache, reference, tmp_path):
    run_dir = tmp_path / "r"
    train_synth(settings(cache, run_dir, epochs=1), progress=False)
    with pytest.raises(ValueError, match=r"cannot change ngf: 4 -> 8"):
        train_synth(settings(cache, run_dir, ngf=8), resume=True, progress=False)


def test_foreign_folders_are_refused_unless_forced_and_classifier_checkpoints_never_replaced(cache, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty.*--force"):
        train_synth(settings(cache, notes, epochs=1), progress=False)
    train_synth(settings(cache, notes, epochs=1), progress=False, force=True)
    assert (notes / "mine.txt").read_text() == "keep" and (notes / "checkpoint.pt").exists()
    run, _ = write_tiny_run(tmp_path / "classifier", size=32)
    with pytest.raises(FileExistsError, match="not a synthesis checkpoint"):
        train_synth(settings(cache, run, epochs=1), progress=False, force=True)
    with pytest.raises(ValueError, match="not a chestxai synthesis checkpoint"):
        load_synth(run)


def test_the_command_trains_resumes_and_checks_numbers_first(cache, tmp_path, capsys):
    run_dir = tmp_path / "cli"
    flags = [
        "--cache-dir",
        str(cache),
        "--domain-a",
        "not:Blob",
        "--domain-b",
        "Blob",
        "--run-dir",
        str(run_dir),
    ]
    small = [
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--no-progress",
    ]
    assert main(["synth", "train", *flags, *small, "--epochs", "1", "--device", "cpu"]) == 0
    # --resume needs only the run: its config.yaml supplies the rest; a flag given now wins
    assert (
        main(["synth", "train", "--run-dir", str(run_dir), "--resume", "--epochs", "2", "--no-progress"]) == 0
    )
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == [1, 2]
    capsys.readouterr()
    assert main(["synth", "train", *flags, "--epochs", "0"]) == 2
    assert "--epochs must be in [1, 100000], got 0" in capsys.readouterr().err
    assert main(["synth", "train", *flags, "--size", "34", "--run-dir", str(tmp_path / "x")]) == 2
    assert "multiple of 4" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written
    assert main(["synth", "train", "--cache-dir", str(cache), "--domain-a", "Blob", "--name", "n"]) == 2
    assert "--domain-b is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "train", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--domain-a not:Pneumonia" in text and "flip" in text


def test_mixed_precision_on_cpu_when_asked(cache, tmp_path):
    """amp on (--amp): bfloat16 autocast on CPU (CUDA uses float16 + GradScaler); losses stay finite."""
    run = train_synth(settings(cache, tmp_path / "amp", epochs=1, max_steps=1, amp="on"), progress=False)
    assert np.isfinite(pd.read_csv(run / "history.csv")[LOSSES].to_numpy()).all()

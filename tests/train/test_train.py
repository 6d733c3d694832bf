"""Training end to end on a tiny synthetic cache: artefacts, reproducibility, resume, torchrun, errors."""

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
from chestxai.crashpoints import ENV as CRASH_ENV
from chestxai.models.checkpoint import load_model, read_checkpoint
from chestxai.testing import blob_dataset, write_tiny_cache
from chestxai.train.loop import train


@pytest.fixture(scope="module")
def blob_cache(tmp_path_factory) -> Path:
    images, labels, _ = blob_dataset(240, size=32, seed=1)
    split = ["train"] * 160 + ["val"] * 40 + ["test"] * 40
    return write_tiny_cache(
        tmp_path_factory.mktemp("cache") / "blobs", images, labels, ["Blob"], "binary", split=split
    )


def tiny_config(cache: Path, run_dir: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.cache_dir={cache}",
            f"run_dir={run_dir}",
            "model.name=resnet18",
            "train.epochs=2",
            "train.batch_size=32",
            "train.lr=0.003",
            "train.threads=1",
            *extra,
        ],
    )


def test_an_epoch_callback_sees_each_row_and_can_stop_the_run(blob_cache, tmp_path) -> None:
    seen: list[dict] = []
    run = train(
        tiny_config(blob_cache, tmp_path / "run", "train.epochs=3"),
        progress=False,
        on_epoch=lambda row: seen.append(row) or row["epoch"] == 2,
    )
    assert [r["epoch"] for r in seen] == [1, 2] and "val_auc" in seen[0]
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [1, 2]  # stopped after epoch 2, saved
    assert (run / "checkpoint.pt").is_file() and (run / "last.pt").is_file()


def test_train_writes_a_complete_run_directory(blob_cache, tmp_path) -> None:
    run = train(tiny_config(blob_cache, tmp_path / "run"), progress=False)
    for name in ("checkpoint.pt", "last.pt", "config.yaml", "history.csv", "splits.csv"):
        assert (run / name).is_file(), name
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"train_loss", "val_auc", "val_loss", "epoch_time_s", "train_images_per_s"} <= set(history.columns)
    assert (history["peak_memory_mb"] > 1).all()  # the process's peak RSS on CPU, in MiB
    # the checkpoint alone rebuilds model + preprocessing
    model, ckpt = load_model(run / "checkpoint.pt")
    assert ckpt["label_names"] == ["Blob"] and ckpt["preprocess"]["size"] == 32
    assert ckpt["config"]["data"]["cache_dir"] == str(blob_cache.resolve())
    assert torch.load(run / "checkpoint.pt", weights_only=True)["format"] == 1
    out = model(torch.zeros(2, 1, 32, 32))
    assert out.shape == (2, 1)
    splits = pd.read_csv(run / "splits.csv")
    assert splits.groupby("split").size().to_dict() == {"test": 40, "train": 160, "val": 40}


def test_same_seed_same_validation_metrics(blob_cache, tmp_path) -> None:
    a = train(tiny_config(blob_cache, tmp_path / "a"), progress=False)
    b = train(tiny_config(blob_cache, tmp_path / "b"), progress=False)
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    np.testing.assert_array_equal(
        ha[["val_auc", "val_loss"]].to_numpy(), hb[["val_auc", "val_loss"]].to_numpy()
    )


def test_existing_run_is_never_overwritten(blob_cache, tmp_path) -> None:
    cfg = tiny_config(blob_cache, tmp_path / "run", "train.epochs=1")
    train(cfg, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(blob_cache, tmp_path / "run", "train.epochs=1"), progress=False)


def test_bad_inputs_fail_before_training(blob_cache, tmp_path) -> None:
    with pytest.raises(KeyError, match="unknown model 'resnet19'"):
        train(tiny_config(blob_cache, tmp_path / "r1", "model.name=resnet19"), progress=False)
    with pytest.raises(ValueError, match="asks for a multilabel task but the cache"):
        train(tiny_config(blob_cache, tmp_path / "r2", "data.task=multilabel"), progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(
            tiny_config(blob_cache, tmp_path / "r3", f"model.weights={tmp_path / 'missing.pth'}"),
            progress=False,
        )
    with pytest.raises(ValueError, match="not in the cache"):
        train(tiny_config(blob_cache, tmp_path / "r4", "data.labels=[Mass]"), progress=False)
    assert not (tmp_path / "r1" / "checkpoint.pt").exists()


def test_learns_the_blob_task(blob_cache, tmp_path) -> None:
    run = train(tiny_config(blob_cache, tmp_path / "run", "train.epochs=4"), progress=False)
    assert pd.read_csv(run / "history.csv")["val_auc"].max() > 0.9


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "chestxai", "train", *args]


def _env(**extra: str) -> dict[str, str]:
    """The subprocess imports this checkout's sources (``src/``), before any other on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")]
    )
    return env


def _cli_args(cache: Path, run_dir: Path, epochs: int) -> list[str]:
    return [
        "--run-dir", str(run_dir), "--epochs", str(epochs), "--batch-size", "16", "--lr", "0.003",
        "--no-progress", "--set", f"data.cache_dir={cache}", "--set", "train.threads=1",
        "--set", "model.name=resnet18",
    ]  # fmt: skip


@pytest.mark.slow
def test_kill_and_resume_matches_an_uninterrupted_run(blob_cache, tmp_path) -> None:
    epochs = 4
    full = tmp_path / "full"
    subprocess.run(_cli(*_cli_args(blob_cache, full, epochs)), check=True, env=_env(), capture_output=True)

    # killed (os._exit, as SIGKILL) after epoch 1's last write: epoch 2 writes nothing before its
    # end, so this is the state a kill anywhere inside epoch 2 leaves -- at a known point, every time
    killed = tmp_path / "killed"
    crashed = subprocess.run(
        _cli(*_cli_args(blob_cache, killed, epochs)),
        env=_env(**{CRASH_ENV: "train:after-history@1"}),
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    history = killed / "history.csv"
    assert list(pd.read_csv(history)["epoch"]) == [1] and read_checkpoint(killed / "last.pt")["epoch"] == 1

    subprocess.run(
        _cli(*_cli_args(blob_cache, killed, epochs), "--resume"), check=True, env=_env(), capture_output=True
    )
    h_full, h_resumed = pd.read_csv(full / "history.csv"), pd.read_csv(history)
    assert list(h_resumed["epoch"]) == list(range(1, epochs + 1))
    np.testing.assert_allclose(h_resumed["val_auc"], h_full["val_auc"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(h_resumed["val_loss"], h_full["val_loss"], rtol=0, atol=1e-5)
    assert read_checkpoint(killed / "last.pt")["epoch"] == epochs


@pytest.mark.slow
def test_torchrun_two_process_gloo(blob_cache, tmp_path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    run_dir = tmp_path / "ddp"
    cmd = [
        str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "chestxai", "train",
        *_cli_args(blob_cache, run_dir, 2), "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    # each rank trained on its own half: the logged images/epoch cover the train split once
    steps_per_rank = (160 // 2) // 16
    assert history["train_images_per_s"].iloc[0] * history["epoch_time_s"].iloc[0] == pytest.approx(
        steps_per_rank * 16 * 2, rel=1e-6
    )
    load_model(run_dir / "checkpoint.pt")


@pytest.mark.real_mlflow
def test_mlflow_tracking_logs_params_metrics_and_artifacts(blob_cache, tmp_path) -> None:
    mlflow = pytest.importorskip("mlflow", reason="the [track] extra (mlflow) is not installed")
    run = train(
        tiny_config(blob_cache, tmp_path / "runs" / "tracked", "name=tracked", "track=true"), progress=False
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    found = mlflow.search_runs(experiment_names=["chestxai"])
    assert len(found) == 1 and found["tags.mlflow.runName"].iloc[0] == "tracked"
    assert found["params.model.name"].iloc[0] == "resnet18"
    history = mlflow.MlflowClient().get_metric_history(found["run_id"].iloc[0], "val_auc")
    assert [m.step for m in history] == [1, 2]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(found["run_id"].iloc[0])}
    assert {"history.csv", "config.yaml"} <= artifacts
    assert (run.parent / "mlartifacts").is_dir()  # artifacts beside the runs, not in the working directory


def test_multitask_head_trains_on_an_index_column(blob_cache, tmp_path) -> None:
    """model.aux names a cache index column (here the view) predicted by a second head."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(blob_cache, cache)
    index = pd.read_csv(cache / "index.csv", keep_default_na=False)
    index["view"] = np.where(np.arange(len(index)) % 2 == 0, "PA", "AP")
    index.to_csv(cache / "index.csv", index=False)
    run = train(tiny_config(cache, tmp_path / "run", "model.aux=view", "train.epochs=1"), progress=False)
    model, ckpt = load_model(run / "checkpoint.pt")
    assert ckpt["model"]["aux_outputs"] == 2
    main, aux = model.forward_multitask(torch.zeros(1, 1, 32, 32))
    assert main.shape == (1, 1) and aux.shape == (1, 2)
    with pytest.raises(ValueError, match="single value"):
        train(tiny_config(blob_cache, tmp_path / "r2", "model.aux=view"), progress=False)
    with pytest.raises(ValueError, match="not a column"):
        train(tiny_config(blob_cache, tmp_path / "r3", "model.aux=quality"), progress=False)

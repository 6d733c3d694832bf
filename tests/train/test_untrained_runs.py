"""``train.epochs: 0``: a run directory whose checkpoint is the initial model, scored on val. With
torchxrayvision weights and ``model.published_head`` that is the published classifier as it is,
which evaluate and explain then use like any trained run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

from chestxai.config import load_config
from chestxai.evaluation.evaluate import evaluate_run
from chestxai.models import create_model
from chestxai.models import xrv as X
from chestxai.models.checkpoint import load_model, read_checkpoint
from chestxai.testing import blob_dataset, write_tiny_cache
from chestxai.train.loop import train


def _cache(root: Path, names: list[str]) -> Path:
    images, labels, _ = blob_dataset(120, size=32, seed=3)
    split = ["train"] * 60 + ["val"] * 30 + ["test"] * 30
    targets = np.repeat(labels.reshape(-1, 1), len(names), axis=1)
    task = "binary" if len(names) == 1 else "multilabel"
    return write_tiny_cache(
        root, images, targets if task == "multilabel" else labels, names, task, split=split
    )


def _config(cache: Path, run_dir: Path, *extra: str):
    return load_config(
        None,
        [f"data.cache_dir={cache}", f"run_dir={run_dir}", "train.epochs=0", "train.threads=1", *extra],
    )


@pytest.fixture(scope="module")
def xrv_resnet50(tmp_path_factory) -> tuple[Path, nn.Module]:
    """A torchxrayvision ResNet-50 file (its published format: a torchvision state dict, 1 channel)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=18)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc.bias.data.uniform_(-2, 2)
    path = tmp_path_factory.mktemp("xrv") / X.CATALOGUE["resnet50-res512-all"].filename  # a local copy
    torch.save(net.state_dict(), path)
    return path, net.eval()


def test_zero_epochs_scores_and_saves_the_initial_model(tmp_path) -> None:
    cache = _cache(tmp_path / "cache", ["Blob"])
    run = train(_config(cache, tmp_path / "run", "model.name=resnet18"), progress=False)
    ckpt = read_checkpoint(run / "checkpoint.pt")
    history = pd.read_csv(run / "history.csv")
    assert ckpt["epoch"] == 0 and list(history["epoch"]) == [0] and math.isnan(history["train_loss"][0])
    assert 0.0 <= history["val_auc"][0] <= 1.0
    torch.manual_seed(0)  # the loop seeds the initial weights with train.seed (0): nothing was trained
    initial = create_model("resnet18", 1, "binary", input_size=32).state_dict()
    assert all(torch.equal(initial[k], v) for k, v in ckpt["state_dict"].items())
    before = (run / "checkpoint.pt").stat().st_mtime_ns
    train(_config(cache, run, "model.name=resnet18"), resume=True, progress=False)  # finished: nothing to do
    assert (run / "checkpoint.pt").stat().st_mtime_ns == before
    assert evaluate_run(run, n_boot=20, figures=False) is not None


def test_published_head_is_torchxrayvisions_classifier_for_the_runs_findings(
    xrv_resnet50, tmp_path, monkeypatch
) -> None:
    path, reference = xrv_resnet50
    reads = []
    real_read = X._read
    monkeypatch.setattr(X, "_read", lambda file: reads.append(file) or real_read(file))
    cache = _cache(tmp_path / "cache", ["Effusion", "Infiltrate"])  # NIH's spelling of Infiltration
    settings = [
        "model.name=resnet50",
        f"model.weights=xrv:{path}",
        "model.published_head=true",
        "model.input_size=64",
    ]
    run = train(_config(cache, tmp_path / "run", *settings), progress=False)
    assert len(reads) == 1  # the head and the operating points come from one read of the file
    model, ckpt = load_model(run / "checkpoint.pt")
    assert ckpt["label_names"] == ["Effusion", "Infiltrate"] and ckpt["preprocess"]["std"] == pytest.approx(
        1 / 2048
    )
    torch.testing.assert_close(model.head.fc.weight, reference.fc.weight[[7, 2]])
    # decided at the published operating points (outputs 7 and 2) until evaluate chooses on val
    assert ckpt["thresholds"] == {
        "Effusion": pytest.approx(0.51862943),
        "Infiltrate": pytest.approx(0.53787947),
    }
    images = torch.rand(2, 1, 64, 64) * 2048 - 1024
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images)[:, [7, 2]], rtol=1e-4, atol=1e-4)


def test_published_head_errors_name_the_fix(xrv_resnet50, tmp_path) -> None:
    path, _ = xrv_resnet50
    cache = _cache(tmp_path / "cache", ["Blob"])
    settings = [
        "model.name=resnet50",
        f"model.weights=xrv:{path}",
        "model.published_head=true",
        "model.input_size=64",
    ]
    with pytest.raises(
        ValueError, match=r"no output for 'Blob'; its findings: Atelectasis, .*Drop published_head"
    ):
        train(_config(cache, tmp_path / "a", *settings), progress=False)
    with pytest.raises(ValueError, match="published_head needs torchxrayvision weights"):
        train(_config(cache, tmp_path / "b", "model.published_head=true"), progress=False)
    assert not (tmp_path / "b").exists()  # refused before any data or run directory
    with pytest.raises(ValueError, match="needs the pooled head"):
        train(_config(cache, tmp_path / "c", *settings, "model.head=pcam"), progress=False)
    assert not (tmp_path / "c").exists()


def test_a_run_on_some_findings_of_a_multilabel_cache_is_evaluated_on_those(tmp_path) -> None:
    """``data.labels`` (NIH's 8 boxed findings of 14, in the recipe's order): evaluate sees the
    cache through the run's label columns instead of refusing the cache it was trained on."""
    from chestxai.data.cache import PreparedCache
    from chestxai.models.trained_run import TrainedRun

    rng = np.random.default_rng(0)
    images, blob, _ = blob_dataset(120, size=32, seed=3)
    blob = blob[:, 0]
    labels = np.stack([blob, rng.integers(0, 2, 120), 1 - blob], axis=1).astype(np.float32)
    split = ["train"] * 60 + ["val"] * 30 + ["test"] * 30
    cache = write_tiny_cache(tmp_path / "cache", images, labels, ["A", "B", "C"], "multilabel", split=split)
    run = train(_config(cache, tmp_path / "run", "model.name=resnet18", "data.labels=[C, A]"), progress=False)
    inputs = TrainedRun.open(run, "cpu").inputs()
    assert inputs.cache.label_names == ["C", "A"]
    np.testing.assert_array_equal(inputs.cache.labels, labels[:, [2, 0]])
    assert PreparedCache(cache).label_names == ["A", "B", "C"]  # the cache itself is untouched
    result = evaluate_run(run, n_boot=20, figures=False)
    assert result is not None

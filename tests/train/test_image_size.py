"""One image size per run (issue 19): a ``data.cache_dir`` whose rows are not ``data.size`` px is
trained at its own size, with a note, and the run records that size - so that ``predict`` (like
serve and export) decodes an upload to the rows the model was trained on and scores it exactly as
``evaluate`` scores the cached image. Before, ``--size 48`` on a 32 px cache recorded 48, and
``predict`` resized uploads to 48 px and then to 32 px."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from chestxai.cli import main
from chestxai.config import DataConfig
from chestxai.data.cache import PreparedCache
from chestxai.data.prepare import prepare
from chestxai.models.checkpoint import read_checkpoint
from chestxai.models.trained_run import TrainedRun
from chestxai.rundir import RunDir, prob_column
from chestxai.train.data_setup import record_cache

NOTE = "holds 32 px images; training at 32 px, not the 48 px asked"


@pytest.fixture(autouse=True)
def no_mlflow(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)


@pytest.fixture(scope="module")
def folder_cache(tmp_path_factory) -> Path:
    """A two-folder PNG dataset at 32 px (noise, so that any extra resize changes the pixels),
    prepared at its own size."""
    root = tmp_path_factory.mktemp("size") / "data"
    rng = np.random.default_rng(0)
    for k, name in enumerate(("NORMAL", "PNEUMONIA")):
        (root / name).mkdir(parents=True)
        for i in range(20):
            img = rng.integers(0, 200, (32, 32), dtype=np.uint8)
            img[8:24, 8:24] //= 1 + k  # a darker square marks the second class
            Image.fromarray(img).save(root / name / f"p{k}{i:02d}.png")
    return prepare("folder", root, size=32, out=root.parent / "cache", workers=0, progress=False)


def test_a_cache_of_another_size_is_recorded_at_its_own_size_with_a_note(folder_cache, caplog):
    cache = PreparedCache(folder_cache)
    cfg = DataConfig(size=48, cache_dir=str(folder_cache))
    with caplog.at_level(logging.WARNING, logger="chestxai.train.data_setup"):
        record_cache(cfg, cache)
    assert cfg.size == 32 and cfg.cache_dir == str(folder_cache.resolve())
    assert [r.getMessage() for r in caplog.records if NOTE in r.getMessage()] != []
    caplog.clear()
    same = DataConfig(size=32, cache_dir=str(folder_cache))
    record_cache(same, cache)
    assert same.size == 32 and caplog.records == []  # nothing to say when the sizes agree


def test_train_size_48_on_a_32px_cache_records_32_and_predict_matches_evaluate(
    folder_cache, tmp_path, caplog
):
    run = RunDir(tmp_path / "run")
    argv = ["train", "--size", "48", "--set", f"data.cache_dir={folder_cache}", "--run-dir", str(run.root)]
    argv += ["--epochs", "1", "--batch-size", "8", "--model", "resnet18", "--no-progress"]
    with caplog.at_level(logging.WARNING):
        assert main(argv + ["--set", "train.threads=1"]) == 0
    assert sum(NOTE in r.getMessage() for r in caplog.records) == 1  # said once
    ckpt = read_checkpoint(run.checkpoint)
    # the rows' size (config.data.size) and the model input (model.input_size = preprocess.size)
    # are two facts; here both are the cache's 32 px, and nothing in the run says 48
    assert ckpt["config"]["data"]["size"] == 32 and TrainedRun.open(run.root, device="cpu").image_size == 32
    assert ckpt["model"]["input_size"] == 32 and ckpt["preprocess"]["size"] == 32
    assert yaml.safe_load(run.config.read_text())["data"]["size"] == 32

    assert main(["evaluate", str(run.root), "--n-boot", "10", "--no-figures", "--no-progress"]) == 0
    evaluated = pd.read_csv(run.predictions, dtype={"image_id": str}).head(4)
    index = pd.read_csv(Path(folder_cache, "index.csv"), keep_default_na=False, dtype=str)
    files = evaluated["image_id"].map(dict(zip(index["image_id"], index["path"], strict=True)))  # absolute
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(run.root), "--images", *files, "--out", str(out), "--no-progress"]) == 0
    predicted = pd.read_csv(out).set_index("path").loc[list(files)]
    column = prob_column(ckpt["label_names"][0])
    np.testing.assert_allclose(predicted[column].to_numpy(), evaluated[column].to_numpy(), atol=1e-5)

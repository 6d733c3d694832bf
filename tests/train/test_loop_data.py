"""What the loop feeds the model and keeps: keyed augmentation independent of batch size (issue 8),
NaN targets masked (issue 9, weaker), a best checkpoint when the AUC is undefined (issue 9 #14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chestxai.config import load_config
from chestxai.data.cache import PreparedCache
from chestxai.models.checkpoint import load_model, read_checkpoint
from chestxai.models.predict import predict_probs
from chestxai.testing import blob_dataset, write_tiny_cache
from chestxai.train import loop


def config(cache: Path, run_dir: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.cache_dir={cache}",
            f"run_dir={run_dir}",
            "model.name=resnet18",
            "train.epochs=1",
            "train.threads=1",
            *extra,
        ],
    )


def test_the_loop_augments_each_image_the_same_whatever_the_batch_size(tmp_path, monkeypatch):
    images, labels, _ = blob_dataset(48, size=16, seed=2)
    split = ["train"] * 32 + ["val"] * 8 + ["test"] * 8
    cache = write_tiny_cache(tmp_path / "c", images, labels, ["Blob"], "binary", split=split)
    seen_rows, seen_x = [], []
    iterate, to_unit = loop.iterate_batches, loop.to_unit

    def recording_iterate(*a, **k):
        for batch in iterate(*a, **k):
            seen_rows.append(batch.rows)
            yield batch

    monkeypatch.setattr(loop, "iterate_batches", recording_iterate)
    monkeypatch.setattr(loop, "to_unit", lambda *a: (seen_x.append(to_unit(*a)), seen_x[-1])[1])
    pixels = {}
    for batch_size, steps in ((4, 4), (16, 1)):  # the same 16 draws of epoch 1, in 4 or 1 batches
        seen_rows.clear(), seen_x.clear()
        loop.train(
            config(
                cache,
                tmp_path / f"b{batch_size}",
                f"train.batch_size={batch_size}",
                f"train.max_steps_per_epoch={steps}",
            ),
            progress=False,
        )
        # the loop fetches one batch past its last step; it never reaches to_unit
        batches = zip(seen_rows[: len(seen_x)], seen_x, strict=True)
        pixels[batch_size] = {int(r): x for rows, xs in batches for r, x in zip(rows, xs, strict=True)}
    assert len(pixels[4]) == 16 and pixels[4].keys() == pixels[16].keys()
    for row, x in pixels[4].items():
        assert torch.equal(x, pixels[16][row]), f"row {row} augmented differently"
    row, x = next(iter(pixels[4].items()))
    assert not torch.equal(x, torch.from_numpy(images[row] / 255.0).float()[None])  # it was augmented


def test_nan_targets_do_not_train_as_negatives(tmp_path):
    """Finding "b" is known only where positive (1 in 4 images), unknown (NaN) elsewhere: a masked
    loss sees only positives and learns p(b) high; counting NaN as negative would learn ~0.25."""
    images, blob, _ = blob_dataset(96, size=16, seed=5)
    b = np.where(np.arange(96) % 4 == 0, 1.0, np.nan)
    labels = np.c_[blob, b].astype(np.float32)
    split = ["train"] * 64 + ["val"] * 16 + ["test"] * 16
    cache = write_tiny_cache(tmp_path / "c", images, labels, ["Blob", "b"], "multilabel", split=split)
    run = loop.train(
        config(cache, tmp_path / "run", "train.epochs=3", "train.batch_size=16", "train.lr=0.01"),
        progress=False,
    )
    model, ckpt = load_model(run / "last.pt")
    test_rows = np.arange(80, 96)
    probs = predict_probs(model, PreparedCache(cache).images[test_rows], ckpt["preprocess"])
    assert probs[:, 1].mean() > 0.6, probs[:, 1]


def test_a_best_checkpoint_is_kept_when_the_validation_auc_is_undefined(tmp_path, caplog):
    """Issue 9 #14: a 3-class task whose val split holds one class: no epoch has a val AUC."""
    rng = np.random.default_rng(0)
    n = 40
    classes = np.r_[np.arange(32) % 3, np.zeros(4, int), np.arange(4) % 3]
    images = rng.integers(0, 255, (n, 16, 16), dtype=np.uint8)
    split = ["train"] * 32 + ["val"] * 4 + ["test"] * 4
    cache = write_tiny_cache(
        tmp_path / "c",
        images,
        np.eye(3, dtype=np.float32)[classes],
        ["a", "b", "c"],
        "multiclass",
        split=split,
    )
    run = loop.train(config(cache, tmp_path / "run", "train.epochs=3", "train.batch_size=8"), progress=False)
    history = pd.read_csv(run / "history.csv")
    assert history["val_auc"].isna().all() and (history["selected_on"] == "val_loss").all()
    best = read_checkpoint(run / "checkpoint.pt")
    assert best["selected_on"] == "val_loss"
    assert best["epoch"] == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert list(history.loc[history["best"] == 1, "epoch"])[-1] == best["epoch"]
    assert "selecting the best epoch on validation loss" in caplog.text

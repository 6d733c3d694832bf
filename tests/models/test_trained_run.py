"""``TrainedRun``: the documented fallbacks for old checkpoints, and ensemble members checked once."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from chestxai.models.checkpoint import read_checkpoint, save_atomic
from chestxai.models.trained_run import TrainedRun
from chestxai.testing import write_tiny_run


def _rewrite(run, change) -> None:
    ckpt = read_checkpoint(run / "checkpoint.pt")
    change(ckpt)
    save_atomic(ckpt, run / "checkpoint.pt")


@pytest.mark.parametrize(("n_labels", "task"), [(1, "binary"), (3, "multilabel")])
def test_a_checkpoint_without_a_task_gets_the_one_fallback(tmp_path, n_labels, task) -> None:
    run, _ = write_tiny_run(tmp_path, "multilabel" if n_labels > 1 else "binary", n_labels)
    _rewrite(run, lambda c: (c["model"].pop("task", None), c.pop("task", None)))
    assert TrainedRun.open(run, "cpu").task == task
    _rewrite(run, lambda c: c.update(task="multiclass"))  # the first checkpoints' top-level field
    assert TrainedRun.open(run, "cpu").task == "multiclass"


def test_the_image_size_is_the_cache_size_else_the_input_size(tmp_path) -> None:
    run, _ = write_tiny_run(tmp_path)
    _rewrite(run, lambda c: c["config"]["data"].update(size=48))
    trained = TrainedRun.open(run, "cpu")
    assert trained.image_size == 48 and trained.preprocess["size"] == 32
    _rewrite(run, lambda c: c["config"]["data"].pop("size"))
    assert TrainedRun.open(run, "cpu").image_size == 32


def test_facts_are_read_once_and_the_model_built_lazily(tmp_path) -> None:
    run, cache = write_tiny_run(tmp_path)
    trained = TrainedRun.open(run, "cpu")
    assert (
        trained.label_names == ["Pneumonia"]
        and trained.epoch == 3
        and trained.checkpoint == run / "checkpoint.pt"
    )
    assert trained.cache_dir == str(cache) and trained.default_thresholds == {"Pneumonia": 0.5}
    assert not trained._models
    assert trained.model is trained.model  # built once
    inputs = trained.inputs()
    probs = trained.predict(inputs.cache.images[inputs.rows("test")], batch_size=8)
    assert probs.shape == (len(inputs.rows("test")), 1) and np.isfinite(probs).all()


def test_members_may_differ_in_input_size_unless_one_geometry_is_needed(tmp_path) -> None:
    a, _ = write_tiny_run(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    _rewrite(b, lambda c: c["preprocess"].update(size=48))
    together = TrainedRun.open(a, "cpu", [b])
    assert together.is_ensemble and together.weights == (0.5, 0.5) and together.checkpoint is None
    with pytest.raises(ValueError, match=r"disagree on preprocessing \(input size\)"):
        TrainedRun.open(a, "cpu", [b], one_input_size=True)
    _rewrite(b, lambda c: c.update(label_names=["Other"]))
    with pytest.raises(ValueError, match="disagree on label names"):
        TrainedRun.open(a, "cpu", [b])


def test_a_stage_needing_one_network_refuses_an_ensemble_before_reading_it(tmp_path) -> None:
    run, _ = write_tiny_run(tmp_path)
    (run / "ensemble.json").write_text("{}")  # unreadable as a manifest: never read with single=True
    (run / "checkpoint.pt").unlink()
    with pytest.raises(FileNotFoundError, match="is an ensemble"):
        TrainedRun.open(run, "cpu", single=True)

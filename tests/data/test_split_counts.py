"""data.per_class: splits drawn by a fixed number of images per class (the seeds' balanced splits)."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.config import config_from_dict, load_config
from chestxai.data.cache import PreparedCache
from chestxai.data.splits import make_splits, splits_from_cache


def counts(y: np.ndarray, rows: np.ndarray) -> list[int]:
    return np.bincount(np.argmax(y[rows], axis=1) if y.shape[1] > 1 else y[rows, 0].astype(int)).tolist()


def multiclass(n: int = 800, k: int = 4, seed: int = 0) -> np.ndarray:
    p = np.array([0.5, 0.3, 0.15, 0.05][:k])
    cls = np.random.default_rng(seed).choice(k, size=n, p=p / p.sum())
    return np.eye(k, dtype=np.float32)[cls]


def test_sixty_per_class_in_val_and_test_rest_in_train():
    """Seed 001: 60 images of every class in val and test, train = everything else."""
    y = multiclass()
    s = make_splits(y, None, task="multiclass", per_class={"val": 6, "test": 6}, seed=0)
    assert counts(y, s["val"]) == [6, 6, 6, 6] and counts(y, s["test"]) == [6, 6, 6, 6]
    assert sorted(np.concatenate(list(s.values())).tolist()) == list(range(len(y)))  # a partition
    again = make_splits(y, None, task="multiclass", per_class={"val": 6, "test": 6}, seed=0)
    assert all(np.array_equal(s[k], again[k]) for k in s)


def test_balanced_train_val_test_counts_and_unused_rest():
    """Seed 000: balanced train/val/test of fixed sizes; the rest of the data is not used."""
    y = (np.random.default_rng(1).random(1000) < 0.3).astype(np.float32)[:, None]
    s = make_splits(y, None, task="binary", per_class={"train": 100, "val": 20, "test": 20}, seed=0)
    assert [counts(y, s[k]) for k in ("train", "val", "test")] == [[100, 100], [20, 20], [20, 20]]
    assert not set(s["train"]) & set(s["test"]) and not set(s["val"]) & set(s["test"])


def test_patients_stay_whole_and_unlabelled_rows_are_never_counted():
    y = multiclass(600, 3)
    y[:30] = np.nan
    groups = (np.arange(600) // 2).astype(str)  # two images per patient
    s = make_splits(y, groups, task="multiclass", per_class={"test": 10}, val=0.1, seed=2)
    assert not set(s["test"]) & set(range(30))
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        assert not set(groups[s[a]]) & set(groups[s[b]])
    assert all(c <= 10 for c in counts(y, s["test"])) and sum(counts(y, s["test"])) >= 27


def test_an_official_part_is_subsampled_and_too_few_images_is_a_clear_error():
    y = multiclass(400, 2)
    official = np.array(["train"] * 300 + ["test"] * 100)
    s = make_splits(y, None, task="multiclass", official=official, per_class={"test": 10}, seed=0)
    assert set(s["test"]) <= set(range(300, 400)) and counts(y, s["test"]) == [10, 10]
    assert not set(s["train"]) & set(range(300, 400))  # official test rows never leak into train
    with pytest.raises(ValueError, match=r"per_class.test=500: too few images of \{'a': .*'b'"):
        make_splits(y, None, task="multiclass", per_class={"test": 500}, class_names=["a", "b"])
    with pytest.raises(ValueError, match="binary or multi-class"):
        make_splits(np.zeros((10, 3)), None, task="multilabel", per_class={"test": 1})


def test_splits_from_cache_counts_the_selected_label(make_tiny_cache):
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < [0.5, 0.2, 0.6]).astype(np.float32)
    cache = PreparedCache(make_tiny_cache(np.zeros((200, 8, 8), np.uint8), y, ["a", "b", "c"], "multilabel"))
    s = splits_from_cache(cache, per_class={"test": 15}, labels=y[:, [1]], label_names=["b"], seed=0)
    assert counts(y[:, [1]], s["test"]) == [15, 15]


@pytest.mark.parametrize(
    "per_class,match",
    [
        ({"valid": 3}, "'valid' is not a split"),
        ({"val": 0}, "whole number >= 1"),
        ({"val": 2.5}, "whole number"),
        ({"val": True}, "whole number"),
    ],
)
def test_config_refuses_bad_counts(per_class, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict({"data": {"per_class": per_class}})


def test_config_counts_from_the_command_line_and_task_check():
    cfg = load_config(None, ["data.per_class.val=60", "data.per_class.test=60"])
    assert cfg.data.per_class == {"val": 60, "test": 60}
    assert load_config(None, ["data.per_class={train: 5}"]).data.per_class == {"train": 5}
    with pytest.raises(ValueError, match="one class per image"):
        config_from_dict({"data": {"task": "multilabel", "per_class": {"val": 3}}})
    config_from_dict({"data": {"task": "multilabel", "labels": ["Pneumothorax"], "per_class": {"val": 3}}})

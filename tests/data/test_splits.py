"""splits: official splits honoured, patient grouping, stratification, balance, weights, sampler."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.data.cache import PreparedCache
from chestxai.data.splits import (
    balanced_subset,
    class_weights,
    make_splits,
    pos_weight,
    sample_weights,
    splits_from_cache,
    stratify_key,
)


def data(n=3000, labels=5, seed=0):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n // 3, n).astype(str)  # ~3 images per patient
    y = (rng.random((n, labels)) < np.linspace(0.02, 0.3, labels)).astype(np.float32)
    y[rng.random((n, labels)) < 0.05] = np.nan
    return y, groups


def assert_partition(splits, n, groups):
    rows = np.concatenate(list(splits.values()))
    assert sorted(rows) == list(range(n)), "every row in exactly one split"
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not set(groups[splits[a]]) & set(groups[splits[b]]), f"a patient is in {a} and {b}"


def test_grouped_stratified_fractions_and_seed():
    y, g = data()
    s = make_splits(y, g, task="multilabel", val=0.1, test=0.2, seed=0)
    assert_partition(s, len(y), g)
    assert abs(len(s["test"]) / len(y) - 0.2) < 0.03 and abs(len(s["val"]) / len(y) - 0.1) < 0.03
    # every label's positive rate is similar in each split (stratified on the rarest positive)
    for name in s:
        rate = np.nanmean(y[s[name]], axis=0)
        np.testing.assert_allclose(rate, np.nanmean(y, axis=0), atol=0.04)
    again = make_splits(y, g, task="multilabel", seed=0)
    other = make_splits(y, g, task="multilabel", seed=1)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    assert not np.array_equal(s["test"], other["test"])


def test_binary_without_groups_is_stratified():
    y = np.r_[np.ones(100), np.zeros(900)][:, None]
    s = make_splits(y, None, task="binary", seed=3)
    for name in s:
        assert abs(y[s[name]].mean() - 0.1) < 0.02


def test_official_split_is_honoured_as_is():
    y, g = data(600)
    official = np.array(["train"] * 400 + ["val"] * 80 + ["test"] * 120)
    s = make_splits(y, g, official=official)
    assert list(s["val"]) == list(range(400, 480)) and list(s["test"]) == list(range(480, 600))


def test_missing_official_val_is_carved_from_train_by_patient():
    y, g = data(1200)
    official = np.where(np.isin(g, np.unique(g)[:80]), "test", "train")  # NIH-like: test list by patient
    s = make_splits(y, g, official=official, val=0.1, seed=0)
    np.testing.assert_array_equal(s["test"], np.flatnonzero(official == "test"))
    assert_partition(s, len(y), g)
    assert abs(len(s["val"]) - 120) < 30


def test_bad_official_values_and_too_few_patients_are_clear_errors():
    y, _ = data(20)
    with pytest.raises(ValueError, match="expected train/val/test"):
        make_splits(y, None, official=np.array(["training"] * 20))
    with pytest.raises(ValueError, match="patient groups"):
        make_splits(y, np.array(["a", "b"] * 10), test=0.2)


def test_stratify_key():
    y = np.array([[1, 0, 1], [0, 0, 0], [np.nan, 1, 1], [0, 0, 1]], np.float32)
    assert list(stratify_key(y, "multilabel")) == [0, -1, 1, 2]  # label 2 is the most frequent
    assert list(stratify_key(np.eye(3)[[2, 0, 1]], "multiclass")) == [2, 0, 1]
    assert list(stratify_key(np.array([[1.0], [np.nan], [0.0]]), "binary")) == [1, 0, 0]


def test_balanced_subset_undersamples_and_fixed_per_class():
    classes = np.r_[np.zeros(90, int), np.ones(10, int), np.full(30, 2)]
    sub = balanced_subset(classes, seed=0)
    assert np.bincount(classes[sub]).tolist() == [10, 10, 10]
    assert np.array_equal(sub, balanced_subset(classes, seed=0))
    rows = np.arange(50, 130)
    fixed = balanced_subset(classes, rows, per_class=5, seed=1)
    assert set(fixed) <= set(rows) and np.bincount(classes[fixed]).tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="fewer rows"):
        balanced_subset(classes, per_class=20)


def test_class_weights_pos_weight_and_sample_weights():
    classes = np.r_[np.zeros(75, int), np.ones(25, int)]
    w = class_weights(classes)
    np.testing.assert_allclose(w, [100 / (2 * 75), 100 / (2 * 25)])
    np.testing.assert_allclose((w[classes]).mean(), 1.0)
    np.testing.assert_allclose(class_weights(classes, n_classes=3), [w[0], w[1], 0])
    y = np.array([[1, 0], [0, np.nan], [0, np.nan], [np.nan, 0]], np.float32)
    np.testing.assert_allclose(pos_weight(y), [2.0, 1.0])  # 2 negatives / 1 positive; none positive -> 1
    sw = sample_weights(classes)
    np.testing.assert_allclose([sw[classes == 0].sum(), sw[classes == 1].sum()], [1, 1])


@pytest.mark.parametrize("seed", range(8))
def test_small_splits_still_give_every_class_to_val_and_train(seed):
    """Issue 9 #14: 40 images in 3 classes, a val split of ~4 images: before, a rare class was
    often absent from val (an undefined AUC); now every class with >= 3 patients reaches each split."""
    counts = [22, 13, 5]
    classes = np.repeat(np.arange(3), counts)
    y = np.eye(3, dtype=np.float32)[classes]
    s = make_splits(y, None, task="multiclass", val=0.1, test=0.2, seed=seed)
    assert_partition(s, len(y), np.arange(len(y)).astype(str))
    for name in ("train", "val", "test"):
        assert set(classes[s[name]]) == {0, 1, 2}, f"{name} lacks a class: {np.bincount(classes[s[name]])}"
    assert 3 <= len(s["val"]) <= 7 and len(s["train"]) >= 24


def test_small_stratified_holdout_keeps_patients_together_and_single_patient_classes_in_train():
    classes = np.r_[np.zeros(12, int), np.ones(6, int), [2, 2]]  # class 2: one patient, two images
    groups = np.r_[np.arange(12) // 2, 6 + np.arange(6) // 2, [99, 99]].astype(str)
    s = make_splits(np.eye(3)[classes], groups, task="multiclass", val=0.25, test=0.0, seed=0)
    assert_partition(s, len(classes), groups)
    assert set(classes[s["val"]]) == {0, 1} and 2 in set(classes[s["train"]])


def test_splits_from_cache_uses_the_split_column(make_tiny_cache):
    n = 60
    images = np.zeros((n, 8, 8), np.uint8)
    labels = (np.arange(n) % 2)[:, None].astype(np.float32)
    split = ["train"] * 40 + ["test"] * 20
    patients = [f"p{i // 2}" for i in range(n)]
    cache = PreparedCache(make_tiny_cache(images, labels, ["y"], "binary", split=split, patient_id=patients))
    s = splits_from_cache(cache, val=0.2, seed=0)
    assert list(s["test"]) == list(range(40, 60)) and len(s["val"]) > 0
    assert_partition(s, n, np.array(patients))

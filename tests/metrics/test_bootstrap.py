"""Clustered bootstrap: patients are resampled whole; intervals contain the point estimate."""

import numpy as np
import pytest

from chestxai.metrics.bootstrap import (
    bootstrap_samples,
    cluster_codes,
    count_clusters,
    has_patient_ids,
    intervals,
    percentile_interval,
    resample_weights,
)
from chestxai.metrics.classification import classification_metrics


def one_big_patient(n_small=60, n_big=40, seed=0):
    """Independent single-image patients (scored well) plus one patient with many images whose
    scores are all wrong together: the errors are clustered."""
    rng = np.random.default_rng(seed)
    y_small = (rng.random(n_small) < 0.5).astype(float)
    p_small = np.clip(0.6 * y_small + 0.4 * rng.random(n_small), 0, 1)
    y_big = np.ones(n_big)
    p_big = 0.05 + 0.1 * rng.random(n_big)  # a positive patient the model misses on every image
    y = np.r_[y_small, y_big][:, None]
    p = np.r_[p_small, p_big][:, None]
    patients = [f"s{i}" for i in range(n_small)] + ["BIG"] * n_big
    return p, y, np.array(patients)


def test_weights_keep_a_patients_images_together():
    _, _, patients = one_big_patient()
    big = patients == "BIG"
    n_patients = len(set(patients))
    for w in resample_weights(len(patients), patients, n_boot=50, seed=3, chunk=20):
        assert w.shape[1] == len(patients)
        # every image of the big patient has the same multiplicity in a replicate
        assert (w[:, big] == w[:, big][:, :1]).all()
        # a replicate draws as many patients as there are: sum of per-patient multiplicities
        per_patient = w[:, ~big].sum(1) + w[:, big][:, 0]
        assert (per_patient == n_patients).all()


def test_image_level_weights_split_patients():
    _, _, patients = one_big_patient()
    w = next(resample_weights(len(patients), None, n_boot=50, seed=3))
    big = patients == "BIG"
    assert (w[:, big] != w[:, big][:, :1]).any()
    assert (w.sum(1) == len(patients)).all()


def test_clustered_interval_is_wider_than_image_level():
    p, y, patients = one_big_patient()
    names = ["finding"]
    clustered = intervals(bootstrap_samples(p, y, "binary", names, groups=patients, n_boot=600, seed=0))
    naive = intervals(bootstrap_samples(p, y, "binary", names, groups=None, n_boot=600, seed=0))
    point = classification_metrics(p, y, "binary", names)["per_class"]["finding"]["roc_auc"]
    for ci in (clustered, naive):
        lo, hi = ci["per_class"]["finding"]["roc_auc"]
        assert lo <= point <= hi
    width = {k: np.diff(v["per_class"]["finding"]["roc_auc"])[0] for k, v in (("c", clustered), ("n", naive))}
    assert width["c"] > 1.5 * width["n"]


def test_bootstrap_is_seeded():
    p, y, patients = one_big_patient()
    a = bootstrap_samples(p, y, "binary", ["f"], groups=patients, n_boot=50, seed=7)
    b = bootstrap_samples(p, y, "binary", ["f"], groups=patients, n_boot=50, seed=7)
    c = bootstrap_samples(p, y, "binary", ["f"], groups=patients, n_boot=50, seed=8)
    np.testing.assert_array_equal(a["macro"]["roc_auc"], b["macro"]["roc_auc"])
    assert not np.array_equal(a["macro"]["roc_auc"], c["macro"]["roc_auc"])


@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_every_interval_contains_its_point_estimate(task):
    rng = np.random.default_rng(4)
    n = 150
    if task == "multiclass":
        y = np.eye(3)[rng.integers(0, 3, n)]
        p = rng.dirichlet(np.ones(3), n) + 0.8 * y
        p /= p.sum(1, keepdims=True)
    else:
        L = 1 if task == "binary" else 4
        y = (rng.random((n, L)) < 0.4).astype(float)
        p = np.clip(0.4 * y + 0.6 * rng.random((n, L)), 0, 1)
    names = [f"c{i}" for i in range(y.shape[1])]
    groups = np.arange(n) // 3
    point = classification_metrics(p, y, task, names)
    ci = intervals(bootstrap_samples(p, y, task, names, groups=groups, n_boot=400, seed=1))
    for avg in ("macro", "micro", "weighted"):
        for k, v in point[avg].items():
            lo, hi = ci[avg][k]
            assert lo - 1e-9 <= v <= hi + 1e-9, (avg, k, v, lo, hi)


def test_cluster_codes_and_percentiles():
    np.testing.assert_array_equal(cluster_codes(["a", "b", "a"], 3), [0, 1, 0])
    np.testing.assert_array_equal(cluster_codes(["", "", ""], 3), [0, 1, 2])  # no ids: images
    codes = cluster_codes(["a", "", "a", ""], 4)
    assert codes[0] == codes[2] and len({codes[1], codes[3], codes[0]}) == 3  # unknowns stay apart
    assert percentile_interval(np.array([np.nan, np.nan])) != percentile_interval(np.arange(101.0))
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))


@pytest.mark.parametrize("missing", [np.nan, None, "", "nan", "NaN", " "])
def test_missing_patient_ids_are_own_clusters_never_a_patients(missing):
    """Issue 9 #12: a missing id (NaN, None, blank, the text "nan") is an image's own cluster. Before the
    fix NaN joined one shared "nan" cluster and blank ids left an unused code that was drawn too."""
    groups = np.array(["a", missing, "b", "a", missing], dtype=object)
    codes = cluster_codes(groups, 5)
    assert codes[0] == codes[3]
    assert len({codes[0], codes[1], codes[2], codes[4]}) == 4  # a, b and two lone images
    assert sorted(set(codes.tolist())) == list(range(4))  # dense: no cluster without images
    assert count_clusters(groups, 5) == 4
    assert has_patient_ids(groups) and not has_patient_ids(np.array([missing] * 3, dtype=object))


def test_partially_missing_ids_never_draw_an_empty_cluster():
    """Issue 9 #12: with some blank ids every replicate still holds exactly k clusters' worth of images.
    Here every cluster has one image, so each replicate has n images; the old codes drew an empty
    cluster too (replicate sizes 0..4 instead of 3)."""
    groups = np.array(["p1", "", "p2"], dtype=object)
    (w,) = resample_weights(3, groups, n_boot=500, seed=0)
    np.testing.assert_array_equal(w.sum(axis=1), 3.0)


def test_all_missing_ids_resample_images():
    groups = [np.nan, "nan", None, ""]
    np.testing.assert_array_equal(cluster_codes(groups, 4), [0, 1, 2, 3])
    assert count_clusters(groups, 4) == 4 and count_clusters(None, 0) == 0


def test_metrics_json_counts_patients_with_missing_ids_as_their_own():
    """Issue 9 #12: n_patients and the bootstrap unit as metrics.json states them (evaluate reads ids
    with astype(str), so a missing id arrives as the text "nan")."""
    from chestxai.evaluation.evaluate import evaluate_predictions

    p = np.array([[0.9], [0.2], [0.7], [0.4], [0.6], [0.1]])
    y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
    ids = np.array(["a", "nan", "a", "nan", "b", ""])
    out = evaluate_predictions(p, y, "binary", ["x"], patient_ids=ids, n_boot=20)
    assert out["n_patients"] == 5 and out["bootstrap"]["unit"] == "patient"
    out = evaluate_predictions(p, y, "binary", ["x"], patient_ids=["nan"] * 6, n_boot=20)
    assert out["n_patients"] == 6 and out["bootstrap"]["unit"] == "image"

"""Every metric, curve, calibration and bootstrap function handles multi-class tasks of any number of
classes, two included (issue 9 #11: a two-folder dataset is a two-class multi-class task, and its
validation failed with "y should be a 1d array, got (8, 2)" where scikit-learn was handed both softmax
columns as if it were a binary problem)."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, confusion_matrix, log_loss, roc_auc_score

from chestxai.metrics.bootstrap import bootstrap_samples, intervals
from chestxai.metrics.calibration import calibration_summary, fit_temperature, negative_log_likelihood
from chestxai.metrics.classification import classification_metrics
from chestxai.metrics.curves import (
    confidence_by_correctness,
    confusion_matrices,
    pr_curves,
    roc_curves,
    threshold_sweeps,
)
from chestxai.metrics.significance import paired_bootstrap_auc, per_class_delong

COUNTS = [2, 3, 5]


def softmax_case(k: int, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed + k)
    labels = np.r_[np.arange(k), rng.integers(0, k, n - k)]  # every class present
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, np.eye(k)[labels], labels


def ovr_auc(labels, probs):
    k = probs.shape[1]
    if k == 2:  # scikit-learn's binary form: the positive column only
        return roc_auc_score(labels, probs[:, 1])
    return roc_auc_score(labels, probs, multi_class="ovr", average="macro")


@pytest.mark.parametrize("k", COUNTS)
def test_point_metrics_match_sklearn_for_any_class_count(k):
    probs, targets, labels = softmax_case(k)
    names = [f"c{i}" for i in range(k)]
    out = classification_metrics(probs, targets, "multiclass", names)
    assert out["macro"]["roc_auc"] == pytest.approx(ovr_auc(labels, probs))
    assert out["overall"]["accuracy"] == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    assert negative_log_likelihood(probs, targets, "multiclass") == pytest.approx(
        log_loss(labels, probs, labels=list(range(k)))
    )


@pytest.mark.parametrize("k", COUNTS)
def test_curves_and_calibration_for_any_class_count(k):
    probs, targets, labels = softmax_case(k)
    names = [f"c{i}" for i in range(k)]
    roc = roc_curves(probs, targets, "multiclass", names)
    assert [roc[n]["auc"] for n in names] == pytest.approx(
        [roc_auc_score(labels == c, probs[:, c]) for c in range(k)]
    )
    assert all(pr_curves(probs, targets, "multiclass", names)[n] is not None for n in names)
    assert set(threshold_sweeps(probs, targets, "multiclass", names)) == set(names)
    np.testing.assert_array_equal(
        confusion_matrices(probs, targets, "multiclass", names)["all"],
        confusion_matrix(labels, probs.argmax(1), labels=list(range(k))),
    )
    conf, right = confidence_by_correctness(probs, targets, "multiclass")
    assert conf.shape == right.shape == (len(labels),)
    cal = calibration_summary(probs, targets, "multiclass", names)
    assert cal["nll"] == pytest.approx(log_loss(labels, probs, labels=list(range(k))))
    assert cal["brier_per_class"]["c0"] == pytest.approx(brier_score_loss(labels == 0, probs[:, 0]))
    assert 0 < fit_temperature(probs, targets, "multiclass") < np.exp(4)


@pytest.mark.parametrize("k", COUNTS)
def test_bootstrap_and_significance_for_any_class_count(k):
    probs, targets, labels = softmax_case(k, n=60)
    names = [f"c{i}" for i in range(k)]
    point = classification_metrics(probs, targets, "multiclass", names)
    ci = intervals(bootstrap_samples(probs, targets, "multiclass", names, n_boot=50, seed=0))
    lo, hi = ci["macro"]["roc_auc"]
    assert lo - 1e-9 <= point["macro"]["roc_auc"] <= hi + 1e-9
    other = np.roll(probs, 1, axis=0)
    delong = per_class_delong(targets, probs, other, "multiclass", names)
    assert set(delong) == set(names) and all(r is not None for r in delong.values())
    paired = paired_bootstrap_auc(targets, probs, other, "multiclass", n_boot=50)
    assert paired.diff == pytest.approx(point["macro"]["roc_auc"] - ovr_auc(labels, other))


def test_two_class_metrics_on_a_validation_sized_batch():
    """The failing case of issue 9 #11: eight validation images of a two-folder dataset, and a batch
    where one class is absent (AUC undefined, NaN with a warning, never an exception)."""
    probs, targets, labels = softmax_case(2, n=8)
    out = classification_metrics(probs, targets, "multiclass", ["NORMAL", "PNEUMONIA"])
    assert out["macro"]["roc_auc"] == pytest.approx(roc_auc_score(labels, probs[:, 1]))
    with pytest.warns(UserWarning, match="no positive"):
        one = classification_metrics(probs[:3], np.eye(2)[[0, 0, 0]], "multiclass", ["NORMAL", "PNEUMONIA"])
    assert np.isnan(one["macro"]["roc_auc"]) and one["overall"]["accuracy"] >= 0

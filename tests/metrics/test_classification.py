"""Point metrics per class and averaged equal scikit-learn; undefined metrics are NaN + warning."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from chestxai.metrics.bootstrap import bootstrap_samples
from chestxai.metrics.classification import METRICS, MetricWarning, classification_metrics


def sklearn_binary(y, p, pred):
    return {
        "accuracy": accuracy_score(y, pred),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=np.nan),
        "recall": recall_score(y, pred),
        "specificity": recall_score(y, pred, pos_label=0),
        "f1": f1_score(y, pred),
        "roc_auc": roc_auc_score(y, p),
        "average_precision": average_precision_score(y, p),
    }


def multilabel_case(seed=0, n=120, n_labels=5):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.35).astype(float)
    p = np.clip(0.35 * y + 0.65 * rng.random((n, n_labels)), 0, 1)
    y[rng.random((n, n_labels)) < 0.15] = np.nan  # unknown findings
    return p, y


def test_multilabel_per_class_and_averages_match_sklearn():
    p, y = multilabel_case()
    names = [f"f{i}" for i in range(y.shape[1])]
    th = np.array([0.3, 0.4, 0.5, 0.6, 0.45])
    out = classification_metrics(p, y, "multilabel", names, th)
    per = []
    for c, name in enumerate(names):
        m = ~np.isnan(y[:, c])
        ref = sklearn_binary(y[m, c], p[m, c], (p[m, c] >= th[c]).astype(float))
        per.append(ref)
        for k, v in ref.items():
            assert out["per_class"][name][k] == pytest.approx(v), (name, k)
        assert out["per_class"][name]["n"] == m.sum()
    for k in METRICS:
        assert out["macro"][k] == pytest.approx(np.mean([r[k] for r in per]))
    # micro: all known (image, finding) pairs pooled
    known = ~np.isnan(y)
    yf, pf = y[known], p[known]
    predf = (p >= th[None, :])[known].astype(float)
    assert out["micro"]["precision"] == pytest.approx(precision_score(yf, predf))
    assert out["micro"]["recall"] == pytest.approx(recall_score(yf, predf))
    assert out["micro"]["f1"] == pytest.approx(f1_score(yf, predf))
    assert out["micro"]["roc_auc"] == pytest.approx(roc_auc_score(yf, pf))
    # weighted: by positives per class, like scikit-learn's average="weighted"
    support = np.array([np.nansum(y[:, c]) for c in range(y.shape[1])])
    assert out["weighted"]["recall"] == pytest.approx(np.average([r["recall"] for r in per], weights=support))


def test_multiclass_uses_argmax_and_matches_sklearn_ovr():
    rng = np.random.default_rng(1)
    n, k = 90, 4
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.eye(k)[labels]
    out = classification_metrics(p, y, "multiclass", ["a", "b", "c", "d"])
    assert out["overall"]["accuracy"] == pytest.approx(accuracy_score(labels, p.argmax(1)))
    assert out["overall"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, p.argmax(1)))
    assert out["macro"]["roc_auc"] == pytest.approx(
        roc_auc_score(labels, p, multi_class="ovr", average="macro")
    )
    assert out["macro"]["f1"] == pytest.approx(f1_score(labels, p.argmax(1), average="macro"))
    assert out["micro"]["recall"] == pytest.approx(accuracy_score(labels, p.argmax(1)))
    assert "threshold" not in out["per_class"]["a"]


def test_absent_class_gives_nan_auc_and_a_warning():
    p, y = multilabel_case(n_labels=3)
    y[:, 1] = np.where(np.isnan(y[:, 1]), np.nan, 0.0)  # class "b" absent from this split
    with pytest.warns(MetricWarning, match="'b' has no positive"):
        out = classification_metrics(p, y, "multilabel", ["a", "b", "c"])
    assert np.isnan(out["per_class"]["b"]["roc_auc"])
    assert np.isnan(out["per_class"]["b"]["average_precision"])
    assert np.isnan(out["per_class"]["b"]["recall"])
    # averages skip the undefined class instead of becoming NaN
    assert out["macro"]["roc_auc"] == pytest.approx(np.mean([out["per_class"][c]["roc_auc"] for c in "ac"]))


@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_bootstrap_kernel_with_unit_weights_reproduces_point_estimates(task):
    rng = np.random.default_rng(2)
    if task == "multiclass":
        y = np.eye(3)[rng.integers(0, 3, 80)]
        p = rng.dirichlet(np.ones(3), 80) + y
        p /= p.sum(1, keepdims=True)
        y[5] = np.nan
    else:
        p, y = multilabel_case(n=80, n_labels=1 if task == "binary" else 4)
    names = [f"c{i}" for i in range(y.shape[1])]
    th = np.full(y.shape[1], 0.45)
    point = classification_metrics(p, y, task, names, th)
    boot = bootstrap_samples(p, y, task, names, th, weights=np.ones((1, len(p))))

    def check(a, b):
        for key, v in b.items():
            if isinstance(v, dict):
                check(a[key], v)
            else:
                assert a[key] == pytest.approx(v[0], nan_ok=True), key

    check(point, boot)


def test_shape_and_value_errors_are_clear():
    with pytest.raises(ValueError, match="one probability column"):
        classification_metrics(np.zeros((3, 2)), np.zeros((3, 2)), "binary", ["a", "b"])
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        classification_metrics(np.zeros((3, 1)), np.full((3, 1), 2.0), "binary", ["a"])
    with pytest.raises(ValueError, match="differ in shape"):
        classification_metrics(np.zeros((3, 1)), np.zeros((4, 1)), "binary", ["a"])

"""Validation scores use evaluation's definitions (issue 8: one NLL, one macro AUC) and select on
loss when the AUC is undefined (issue 9 #14)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from chestxai.metrics.calibration import negative_log_likelihood
from chestxai.metrics.classification import classification_metrics
from chestxai.train.validation import improves, pick_monitor, selection_score, validation_scores


def case(task, n=60, labels=3, seed=0):
    rng = np.random.default_rng(seed)
    if task == "multiclass":
        y = np.eye(labels)[rng.integers(0, labels, n)]
        y[:3] = np.nan  # rows with an unknown class are dropped whole
        p = rng.dirichlet(np.ones(labels), n)
    else:
        labels = 1 if task == "binary" else labels
        y = (rng.random((n, labels)) < 0.4).astype(float)
        y[rng.random((n, labels)) < 0.2] = np.nan  # unknown findings, unequal per label
        p = rng.random((n, labels))
    return y, p


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_validation_equals_evaluations_nll_and_macro_auc(task):
    y, p = case(task)
    scores = validation_scores(task, y, p)
    names = [f"c{i}" for i in range(p.shape[1])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluation = classification_metrics(p, y, task, names)
    assert scores["loss"] == negative_log_likelihood(p, y, task)
    assert scores["auc"] == pytest.approx(evaluation["macro"]["roc_auc"], abs=1e-12)
    expected_acc = (
        evaluation["overall"]["accuracy"] if task == "multiclass" else evaluation["micro"]["accuracy"]
    )
    assert scores["accuracy"] == pytest.approx(expected_acc, abs=1e-12)


def test_multilabel_loss_pools_known_entries_like_evaluation():
    # label 0: 1 known entry, label 1: 3 known entries -> pooled mean over 4, not a mean of 2 means
    y = np.array([[1, 0], [np.nan, 1], [np.nan, 0]], float)
    p = np.array([[0.5, 0.5], [0.9, 0.8], [0.9, 0.4]])
    pooled = -(np.log(0.5) + np.log(0.5) + np.log(0.8) + np.log(0.6)) / 4
    assert validation_scores("multilabel", y, p)["loss"] == pytest.approx(pooled, abs=1e-12)


def test_undefined_auc_selects_on_loss():
    y = np.eye(3)[[0, 0, 0, 0]]  # a val split with one class only: no AUC anywhere
    p = np.full((4, 3), 1 / 3)
    scores = validation_scores("multiclass", y, p)
    assert math.isnan(scores["auc"]) and scores["loss"] == pytest.approx(math.log(3))
    assert pick_monitor(scores) == "val_loss"
    assert selection_score(scores, "val_loss") == -scores["loss"]
    assert pick_monitor({"auc": 0.7, "loss": 1.0}) == "val_auc"


def test_first_epoch_always_improves_then_strictly_better():
    assert improves(float("nan"), -math.inf, have_best=False)  # a best checkpoint is always written
    assert improves(0.5, float("nan"), have_best=True)
    assert not improves(float("nan"), 0.5, have_best=True)
    assert not improves(0.5, 0.5, have_best=True) and improves(0.51, 0.5, have_best=True)

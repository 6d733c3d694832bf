"""Runs given together decide with their own val-fitted weights and thresholds (issue 20, item 13).

Before, ``chestxai uncertainty A B --method ensemble`` averaged A and B uniformly and decided at
A's ``thresholds.json`` (and A's temperature): thresholds the ensemble was never evaluated at.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from chestxai.metrics.ensemble_weights import fit_weights
from chestxai.metrics.threshold_policy import choose_thresholds
from chestxai.models.trained_run import TrainedRun
from chestxai.rundir import RunDir
from chestxai.rundir.predictions import read_predictions
from chestxai.rundir.thresholds import write_thresholds
from chestxai.uncertainty.stage import uncertainty_run

from .conftest import tiny_dropout_run, with_dropout


@pytest.fixture
def two_runs(tmp_path):
    a, _ = tiny_dropout_run(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    with_dropout(b, seed=1)
    # A's own operating point, chosen for A alone (and a temperature fitted for A alone)
    write_thresholds(
        RunDir(a), {"Pneumonia": 0.987}, policy="sensitivity:0.99", chosen_on="val", epoch=3,
        checkpoint=str(a / "checkpoint.pt"), evaluated_split="test", temperature=3.0,
    )  # fmt: skip
    return a, b


def test_runs_given_together_fit_their_own_weights_and_thresholds(two_runs):
    a, b = two_runs
    s = uncertainty_run(a, method="ensemble", members=[b], n_boot=0, n_gallery=0, figures=False)
    # the reference: each member's val probabilities, weights fitted on val log-loss, youden on their mean
    inputs = TrainedRun.open(a, "cpu").inputs()
    val_rows = inputs.rows("val")
    probs = [TrainedRun.open(r, "cpu").predict(inputs.cache.images[val_rows]) for r in (a, b)]
    targets = inputs.cache.labels[val_rows]
    fit = fit_weights(probs, targets, "binary")
    np.testing.assert_allclose(s["member_weights"], fit.weights, atol=1e-6)
    mean = fit.weights[0] * probs[0] + fit.weights[1] * probs[1]
    expected = choose_thresholds(mean, targets, "binary", ["Pneumonia"], "youden")
    th = s["thresholds"]
    assert th["source"] != "thresholds.json" and th["temperature"] is None
    assert th["values"]["Pneumonia"] == pytest.approx(expected["Pneumonia"], abs=1e-6)
    assert th["values"]["Pneumonia"] != pytest.approx(0.987)
    assert "fitted on val" in s["member_weights_source"]
    # the written decisions are the weighted mean at those thresholds, on val and test alike
    preds = read_predictions(RunDir(a).uncertainty_dir("ensemble").predictions)
    for split in ("val", "test"):
        part = preds.select(split)
        decided = part.frame["decision_Pneumonia"].to_numpy().astype(bool)
        assert (decided == (part.probs[:, 0] >= th["values"]["Pneumonia"])).all()
    np.testing.assert_allclose(preds.select("val").probs[:, 0], mean[:, 0], atol=1e-5)


def test_an_ensemble_run_keeps_its_own_weights_and_thresholds(two_runs, tmp_path):
    """Not the defect: a run built by `chestxai ensemble` already decides with its own files."""
    from chestxai.evaluation import evaluate_run
    from chestxai.evaluation.ensemble_runs import ensemble_runs
    from chestxai.rundir.ensemble import read_ensemble
    from chestxai.rundir.thresholds import read_thresholds

    a, b = two_runs
    for r in (a, b):
        evaluate_run(r, n_boot=0, figures=False)
    ens = tmp_path / "ens"
    ensemble_runs([a, b], ens, n_boot=0, figures=False)
    s = uncertainty_run(ens, method="ensemble", n_boot=0, n_gallery=0, figures=False)
    assert s["member_weights"] == pytest.approx(read_ensemble(RunDir(ens)).weights)
    assert s["thresholds"]["values"] == read_thresholds(RunDir(ens))["values"]


def test_runs_given_together_without_val_are_refused_before_inference(tmp_path, monkeypatch):
    from chestxai.rundir.tables import read_splits, write_splits
    from chestxai.uncertainty import stage

    a, _ = tiny_dropout_run(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    for r in (a, b):
        table = read_splits(RunDir(r))
        table["split"] = table["split"].replace({"val": "train"})
        write_splits(RunDir(r), table)

    def boom(*a, **k):
        raise AssertionError("inference started before the input was checked")

    monkeypatch.setattr(stage, "predict_with_uncertainty", boom)
    with pytest.raises(ValueError, match="need validation images.*chestxai ensemble"):
        uncertainty_run(a, method="ensemble", members=[b], n_boot=0, n_gallery=0, figures=False)

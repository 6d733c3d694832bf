"""Ensembles: weights fitted on val favour the better member; runs combine via predictions.csv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chestxai.models.ensemble import fit_weights, weighted_average
from chestxai.models.ensemble_runs import ensemble_runs


def test_weights_favour_the_informative_member() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((400, 1)) < 0.5).astype(np.float32)
    good = np.clip(y * 0.8 + 0.1 + rng.normal(0, 0.05, y.shape), 0.01, 0.99)
    noise = rng.random(y.shape)
    fit = fit_weights([good, noise], y, "binary")
    assert fit.weights.sum() == pytest.approx(1.0) and (fit.weights >= 0).all()
    assert fit.weights[0] > 0.9
    assert (
        fit.val_log_loss <= min(fit.member_val_log_loss) + 1e-4
    )  # never materially worse than the best member


def test_weighted_average_keeps_softmax_rows() -> None:
    a = np.array([[0.7, 0.2, 0.1]])
    b = np.array([[0.1, 0.1, 0.8]])
    out = weighted_average([a, b], np.array([0.25, 0.75]))
    np.testing.assert_allclose(out.sum(1), 1.0)
    np.testing.assert_allclose(out, 0.25 * a + 0.75 * b)


def test_needs_two_members() -> None:
    with pytest.raises(ValueError, match="at least two"):
        fit_weights([np.zeros((3, 1))], np.zeros((3, 1)), "binary")


def _fake_run(path, probs_val, probs_test, y_val, y_test):
    """A run directory with predictions.csv and a checkpoint recording the task."""
    import torch

    from chestxai.models import create_model
    from chestxai.models.checkpoint import make_checkpoint, save_atomic

    path.mkdir()
    model = create_model("mobilenetv2", 1, "binary", input_size=32)
    save_atomic(
        make_checkpoint(model, ["Blob"], {"size": 32, "mean": 0.5, "std": 0.25}), path / "checkpoint.pt"
    )
    rows = []
    for split, p, y in (("val", probs_val, y_val), ("test", probs_test, y_test)):
        for i, (pi, yi) in enumerate(zip(p, y, strict=True)):
            rows.append(
                {
                    "image_id": f"{split}{i}",
                    "patient_id": f"{split}{i}",
                    "split": split,
                    "p_Blob": pi,
                    "y_Blob": yi,
                }
            )
    pd.DataFrame(rows).to_csv(path / "predictions.csv", index=False)
    del torch


def test_ensemble_runs_writes_predictions_and_metrics(tmp_path) -> None:
    rng = np.random.default_rng(1)
    yv, yt = (rng.random(200) < 0.5).astype(float), (rng.random(200) < 0.5).astype(float)
    good = lambda y: np.clip(y * 0.6 + 0.2 + rng.normal(0, 0.15, y.shape), 0.01, 0.99)  # noqa: E731
    _fake_run(tmp_path / "a", good(yv), good(yt), yv, yt)
    _fake_run(tmp_path / "b", rng.random(200), rng.random(200), yv, yt)
    result = ensemble_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "ens", n_boot=50)
    assert result["weights"][0] > result["weights"][1]
    preds = pd.read_csv(tmp_path / "ens" / "predictions.csv")
    assert set(preds["split"]) == {"val", "test"} and len(preds) == 400
    metrics = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert metrics["metrics"]["macro"]["roc_auc"]["value"] > 0.8
    with pytest.raises(FileExistsError):
        ensemble_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "ens")

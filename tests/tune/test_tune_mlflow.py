"""MLflow, when installed: each trial's own run (the training loop's tracker) and one run per trial
in an experiment named after the study (Optuna's MLflowCallback), in the store beside the runs."""

from __future__ import annotations

import pytest

from .conftest import run_here, tune_args


@pytest.mark.slow
@pytest.mark.real_mlflow
def test_trials_are_logged_to_mlflow(tiny, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="pip install 'chestxai[track]'")
    study = tmp_path / "runs" / "logged"
    assert run_here(tune_args(tiny, study, 2, "--set", "track=true")) == 0  # MLflow only when asked
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    per_trial = mlflow.search_runs(experiment_names=["logged"])
    assert len(per_trial) == 2 and per_trial["metrics.val_auc"].notna().all()
    assert {"params.train.lr", "params.model.dropout"} <= set(per_trial.columns)
    trained = mlflow.search_runs(experiment_names=["chestxai"])
    assert set(trained["tags.mlflow.runName"]) == {"logged-trial-0000", "logged-trial-0001"}
    assert "metrics.val_auc" in trained.columns

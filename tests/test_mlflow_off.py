"""The suite's MLflow policy (tests/mlflow_off.py): hidden from every test unless it is marked."""

from __future__ import annotations

import sys

import pytest

from chestxai.train.tracking import Tracker


def test_an_unmarked_test_runs_without_mlflow(tmp_path):
    with pytest.raises(ImportError):
        import mlflow  # noqa: F401
    assert not Tracker(tmp_path / "runs" / "r", "r").active and not (tmp_path / "runs" / "mlflow.db").exists()


@pytest.mark.real_mlflow
def test_a_marked_test_imports_the_real_mlflow():
    mlflow = pytest.importorskip("mlflow", reason="the [track] extra (mlflow) is not installed")
    assert sys.modules["mlflow"] is mlflow and hasattr(mlflow, "start_run")

"""Experiment tracking: always the run directory; MLflow too when asked (``--track`` / ``track: true``).

MLflow is only used when a run asks for it (``--track``, ``track: true`` in a recipe, or a
``--tracking-uri``): an installed mlflow alone (the dev stack has it) used to switch it on unasked.

MLflow is imported lazily and only used when present, so the core install stays small. The
default store is a local SQLite file beside the runs (``<runs root>/mlflow.db``, artifacts in
``<runs root>/mlartifacts``): MLflow 3 no longer accepts its old file store by default.
``--tracking-uri`` points elsewhere (a server, another database). Browse with
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EXPERIMENT = "chestxai"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Tracker:
    """Logs params/metrics/artifacts to MLflow when available; a no-op otherwise (or off rank 0)."""

    def __init__(self, run_dir: Path, run_name: str, uri: str = "", enabled: bool = True):
        self._mlflow = None
        if not enabled:
            return
        try:
            import mlflow
        except ImportError:
            log.warning(
                "--track: mlflow is not installed, so the run is tracked in its run directory only "
                "(pip install 'chestxai[track]')"
            )
            return
        runs_root = run_dir.resolve().parent
        uri = uri or f"sqlite:///{runs_root / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=(runs_root / "mlartifacts").as_uri())
        mlflow.set_experiment(EXPERIMENT)
        mlflow.start_run(run_name=run_name)
        self._mlflow = mlflow
        log.info("MLflow tracking at %s", uri)

    @property
    def active(self) -> bool:
        return self._mlflow is not None

    def log_params(self, params: dict[str, Any]) -> None:
        if self._mlflow:
            flat = {k: str(v)[:500] for k, v in _flatten(params).items()}
            self._mlflow.log_params(flat)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self._mlflow:
            self._mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v}, step=step)

    def log_artifact(self, path: Path) -> None:
        if self._mlflow and Path(path).exists():
            self._mlflow.log_artifact(str(path))

    def close(self, status: str = "FINISHED") -> None:
        if self._mlflow:
            self._mlflow.end_run(status=status)
            self._mlflow = None

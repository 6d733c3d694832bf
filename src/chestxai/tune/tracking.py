"""MLflow for a study, when MLflow is installed (the ``[track]`` extra), else nothing.

Each trial is an ordinary training run, so the training loop's tracker already logs it (the full
config as parameters, every epoch's metrics) as an MLflow run named ``<study>-trial-NNNN``.
Besides those, Optuna's own ``MLflowCallback`` (optuna-integration) logs one run per trial into an
experiment named after the study, holding just the searched parameters, the trial's value
(``val_auc``) and its state, which is what MLflow's parallel-coordinates view of a search needs.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def mlflow_callback(uri: str) -> Callable[[Any, Any], None] | None:
    """Optuna's MLflowCallback on ``uri``, or None when mlflow / optuna-integration is missing."""
    try:
        import mlflow  # noqa: F401
        import mlflow.utils.validation  # noqa: F401  (the callback reads it; a bare `import mlflow` may not load it)
        from optuna_integration import MLflowCallback
    except ImportError:
        log.info("mlflow or optuna-integration not installed: the study is not logged to MLflow")
        return None
    with warnings.catch_warnings():  # the callback is marked experimental; that is not the user's concern
        warnings.simplefilter("ignore")
        callback = MLflowCallback(tracking_uri=uri, metric_name="val_auc", create_experiment=True)
    log.info("logging the study's trials to MLflow at %s", uri)
    return callback

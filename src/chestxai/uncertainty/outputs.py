"""``RUN/uncertainty/<method>/predictions.csv``: one row per image (val rows, then the evaluated
split), readable by :func:`chestxai.rundir.predictions.read_predictions` like any predictions file.

Columns: ``image_id, patient_id, split``, ``p_<label>`` (the **mean** probability over the
samples, after the operating temperature if any), ``y_<label>`` (target, NaN = unknown), then per
label ``std_``, ``entropy_``, ``mi_`` (mutual information), ``decision_`` (0/1 at the operating
threshold; argmax for multi-class) and ``deterministic_`` (the single eval-mode prediction).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from chestxai.metrics.decisions import decide
from chestxai.rundir.predictions import predictions_frame

#: extra per-label columns: prefix -> key in the measures dict
COLUMNS = {
    "std_": "std",
    "entropy_": "entropy",
    "mi_": "mutual_information",
    "deterministic_": "deterministic",
}


def uncertainty_frame(
    cache_frame: pd.DataFrame,
    parts: Sequence[tuple[str, np.ndarray, dict]],
    label_names: list[str],
    thresholds: np.ndarray | None,
    task: str,
    labels: np.ndarray,
) -> pd.DataFrame:
    """The table for ``parts`` = ``(split name, cache rows, measures dict)``."""
    frames = []
    ids = cache_frame["image_id"].to_numpy(str)
    patients = cache_frame["patient_id"].astype(str).to_numpy()
    for name, rows, res in parts:
        f = predictions_frame(
            ids[rows], patients[rows], [name] * len(rows), res["mean"], labels[rows], label_names
        )
        dec = decide(res["mean"], task, thresholds)
        extra = {}
        for prefix, key in COLUMNS.items():
            for c, label in enumerate(label_names):
                extra[f"{prefix}{label}"] = np.asarray(res[key], np.float64)[:, c]
        for c, label in enumerate(label_names):
            extra[f"decision_{label}"] = dec[:, c].astype(int)
        frames.append(pd.concat([f, pd.DataFrame(extra)], axis=1))
    return pd.concat(frames, ignore_index=True)

"""``predictions.csv``: one row per evaluated image, the table every later stage reads.

Columns: ``image_id, patient_id, split, p_<label>..., y_<label>...`` (targets NaN = unknown).
``RUN/predictions.csv`` holds the test rows *and* the val rows the thresholds were chosen on
(``ensemble`` fits its weights on them): every reader selects by ``split`` (:meth:`Predictions.select`).
Metrics can always be recomputed from this file alone, without the model or the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.atomic import write_text
from chestxai.rundir.layout import prob_column, target_column

ID_COLUMNS = ("image_id", "patient_id", "split")


@dataclass
class Predictions:
    frame: pd.DataFrame  # image_id, patient_id, split (+ the p_/y_ columns)
    probs: np.ndarray  # N x L float
    targets: np.ndarray  # N x L float, NaN = unknown
    label_names: list[str]

    def select(self, split: str) -> Predictions:
        m = (self.frame["split"] == split).to_numpy()
        return Predictions(
            self.frame[m].reset_index(drop=True), self.probs[m], self.targets[m], self.label_names
        )


def predictions_frame(
    image_ids, patient_ids, splits, probs: np.ndarray, targets: np.ndarray, label_names: list[str]
) -> pd.DataFrame:
    cols: dict = {"image_id": list(image_ids), "patient_id": list(patient_ids), "split": list(splits)}
    for c, name in enumerate(label_names):
        cols[prob_column(name)] = np.asarray(probs, dtype=np.float64)[:, c]
    for c, name in enumerate(label_names):
        cols[target_column(name)] = np.asarray(targets, dtype=np.float64)[:, c]
    return pd.DataFrame(cols)


def write_predictions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the CSV via a temporary file and a rename (readers never see half a file)."""
    path = Path(path)
    # full precision: thresholds compare exactly after a round trip
    write_text(path, frame.to_csv(index=False))
    return path


def read_predictions(path: str | Path) -> Predictions:
    """Read ``predictions.csv``; label names come from the ``p_`` columns in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `chestxai evaluate {path.parent}` first")
    frame = pd.read_csv(path, dtype={"image_id": str, "patient_id": str, "split": str}, keep_default_na=False)
    missing = [c for c in ID_COLUMNS if c not in frame.columns]
    names = [c[2:] for c in frame.columns if c.startswith("p_")]
    lacking = [target_column(n) for n in names if target_column(n) not in frame.columns]
    if missing or lacking or not names:
        raise ValueError(
            f"{path} is not a chestxai predictions file: missing columns {missing + lacking or ['p_<label>']}"
        )
    probs = frame[[prob_column(n) for n in names]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    targets = (
        frame[[target_column(n) for n in names]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    )
    return Predictions(frame, probs, targets, names)

"""The one decision rule: probabilities -> yes/no per class, for every stage that decides.

``evaluate`` (metrics, confusion matrices, figures), ``serve``/``predict``, the ONNX runtime, the
uncertainty stage and the report's explanation gallery all call :func:`decide`, so a run's
decisions are the same wherever they are shown; it used to be written three times and they had
started to differ (one applied the calibration temperature, two did not).

* ``multiclass``: the argmax (a softmax model picks exactly one class); thresholds and the
  temperature change nothing (scaling keeps the order of the classes).
* ``binary`` / ``multilabel``: ``p >= threshold`` per class (0.5 when no thresholds are given),
  after scaling ``p`` by ``temperature`` when the thresholds were chosen on temperature-scaled
  probabilities (``evaluate --calibrated`` records it in ``thresholds.json``). The probabilities
  reported stay the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chestxai.metrics.calibration import apply_temperature

DEFAULT_THRESHOLD = 0.5


def decide(
    probs: np.ndarray,
    task: str,
    thresholds: Sequence[float] | np.ndarray | None = None,
    temperature: float | None = None,
) -> np.ndarray:
    """``N x L`` bool decisions for ``N x L`` probabilities.

    ``thresholds``: one per column, in column order (``None``: 0.5 each). ``temperature``: scale
    the probabilities by it before comparing (``None`` or 0: as they are)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be an N x L array, got shape {p.shape}")
    if thresholds is None:
        t = np.full(p.shape[1], DEFAULT_THRESHOLD)
    else:
        t = np.asarray(thresholds, dtype=np.float64)
    if t.shape != (p.shape[1],):
        raise ValueError(f"probabilities of shape {p.shape} do not match {t.size} thresholds")
    if task == "multiclass":
        out = np.zeros(p.shape, dtype=bool)
        out[np.arange(len(p)), p.argmax(axis=1)] = True
        return out
    if temperature:
        p = apply_temperature(p, float(temperature), task)
    return p >= t[None, :]

"""Probabilities -> decisions at the run's operating thresholds (no torch: the ONNX path uses it).

It lives in ``export`` because the onnxruntime scorer (:mod:`.runtime`) needs it and ``serve``,
which sits above ``export``, imports it from here.

Thresholds come from :func:`chestxai.rundir.thresholds.operating_thresholds` (``thresholds.json``
chosen by ``evaluate``, else the checkpoint's 0.5 defaults). When they were chosen on
temperature-scaled probabilities (``evaluate --calibrated``) the same temperature is applied
before comparing, as ``evaluate`` did; the probabilities reported stay the model's own.
"""

from __future__ import annotations

import numpy as np

from chestxai.evaluation.calibration import apply_temperature


def decide(
    probs: np.ndarray,
    thresholds: dict[str, float],
    label_names: list[str],
    task: str,
    temperature: float | None = None,
) -> np.ndarray:
    """``N x L`` bool: ``p >= threshold`` per label (multi-class: the arg-max class)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(label_names):
        raise ValueError(f"probabilities of shape {p.shape} do not match {len(label_names)} labels")
    if task == "multiclass":
        return np.eye(len(label_names), dtype=bool)[p.argmax(axis=1)] if len(p) else p.astype(bool)
    if temperature:
        p = apply_temperature(p, float(temperature), task)
    t = np.array([float(thresholds[n]) for n in label_names])
    return p >= t[None, :]

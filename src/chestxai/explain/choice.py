"""Which finding an explanation shows when the user names none: the model's positive findings first.

The highest raw probability is not the model's answer: a finding can score 0.523 under its 0.527
threshold while another finding, at 0.31 over a 0.2 threshold, is the one the model calls
positive. So the default is the highest-probability finding *decided positive* at the run's
operating thresholds; only when no finding is positive is the highest-scoring (negative) one
shown, and the choice says so (:attr:`ExplainedTarget.note`). The service (``/v1/predict``, the
viewer) and ``chestxai predict --explain`` both call :func:`choose_target`, so they never disagree.

NumPy only: the ONNX path of ``predict`` imports the serve layer, which imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: how a target was chosen (the ``selected_by`` field / column)
REQUESTED = "requested"
TOP_POSITIVE = "top positive finding"
TOP_NEGATIVE = "top score, no positive finding"


@dataclass(frozen=True)
class ExplainedTarget:
    index: int
    name: str
    positive: bool  # the model decided this finding positive
    selected_by: str  # REQUESTED, TOP_POSITIVE or TOP_NEGATIVE

    @property
    def note(self) -> str | None:
        """A sentence for the user when the heatmap explains a finding the model rejected."""
        if self.positive:
            return None
        if self.selected_by == TOP_NEGATIVE:
            return (
                f"no finding is positive at the operating thresholds; the heatmap explains the "
                f"highest-scoring finding, {self.name}, which the model decided negative"
            )
        return f"{self.name} was asked for; the model decided it negative"


def choose_target(
    label_names: Sequence[str],
    probs: np.ndarray,
    decisions: np.ndarray,
    requested: str | None = None,
) -> ExplainedTarget:
    """The finding to explain for one image: ``requested`` when given, else the highest-probability
    positive finding, else (nothing positive) the highest-probability finding, marked negative."""
    names = list(label_names)
    p = np.asarray(probs, dtype=np.float64).ravel()
    d = np.asarray(decisions).ravel().astype(bool)
    if not len(names) == len(p) == len(d):
        raise ValueError(f"{len(names)} labels but {len(p)} probabilities and {len(d)} decisions")
    if requested is not None:
        k = names.index(requested)
        return ExplainedTarget(k, names[k], bool(d[k]), REQUESTED)
    if d.any():
        k = int(np.flatnonzero(d)[np.argmax(p[d])])
        return ExplainedTarget(k, names[k], True, TOP_POSITIVE)
    k = int(np.argmax(p))
    return ExplainedTarget(k, names[k], False, TOP_NEGATIVE)

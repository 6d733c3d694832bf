"""Operating thresholds: turn a probability into a yes/no at a point chosen on *validation* data.

Policies (the ``--threshold-policy`` flag):

* ``0.5`` (or any number in (0, 1)): a fixed threshold;
* ``youden``: maximise Youden's J = sensitivity + specificity - 1;
* ``sensitivity:0.95``: the highest threshold whose sensitivity is at least 0.95 (screening: miss
  few positives, with as few false alarms as that allows);
* ``specificity:0.95``: the lowest threshold whose specificity is at least 0.95.

Choosing on validation and applying on test keeps the test estimate honest. A class that has no
positives or no negatives in validation keeps 0.5 (with a warning): no threshold can be learned.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_curve

from chestxai.metrics.classification import MetricWarning
from chestxai.metrics.task_rules import check_arrays, valid_mask

log = logging.getLogger(__name__)
KINDS = ("fixed", "youden", "sensitivity", "specificity")
FALLBACK = 0.5


@dataclass(frozen=True)
class ThresholdPolicy:
    kind: str
    value: float | None = None

    def __str__(self) -> str:
        if self.kind == "youden":
            return "youden"
        if self.kind == "fixed":
            return f"{self.value:g}"
        return f"{self.kind}:{self.value:g}"


def parse_policy(text: str | float | ThresholdPolicy) -> ThresholdPolicy:
    """``"youden"``, ``"0.5"``, ``"sensitivity:0.95"`` or ``"specificity:0.9"`` -> policy."""
    if isinstance(text, ThresholdPolicy):
        return text
    raw = str(text).strip().lower()
    hint = "use youden, a number such as 0.5, sensitivity:0.95 or specificity:0.95"
    if raw == "youden":
        return ThresholdPolicy("youden")
    kind, _, value = raw.partition(":")
    if not value:
        kind, value = "fixed", kind
    if kind not in KINDS or kind == "youden":
        raise ValueError(f"unknown --threshold-policy {text!r}; {hint}")
    try:
        v = float(value)
    except ValueError:
        raise ValueError(f"--threshold-policy {text!r}: {value!r} is not a number; {hint}") from None
    if not 0.0 < v < 1.0 and not (kind != "fixed" and v == 1.0):
        raise ValueError(f"--threshold-policy {text!r}: the value must lie in (0, 1); {hint}")
    return ThresholdPolicy(kind, v)


def choose_threshold(scores: np.ndarray, y: np.ndarray, policy: str | ThresholdPolicy) -> float:
    """The threshold (predict positive when ``score >= threshold``) for one class under ``policy``."""
    policy = parse_policy(policy)
    if policy.kind == "fixed":
        return float(policy.value)
    y = np.asarray(y, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if not (0 < (y == 1).sum() < len(y)):
        raise ValueError("needs both positive and negative examples")
    fpr, tpr, thr = roc_curve(y, scores, drop_intermediate=False)
    fpr, tpr, thr = fpr[1:], tpr[1:], thr[1:]  # the first point is "nothing positive" (threshold inf)
    if policy.kind == "youden":
        k = int(np.argmax(tpr - fpr))  # first maximum = the highest such threshold
    elif policy.kind == "sensitivity":
        k = int(np.flatnonzero(tpr >= policy.value - 1e-12)[0])  # thresholds fall as tpr rises
    else:
        ok = np.flatnonzero(1.0 - fpr >= policy.value - 1e-12)
        k = int(ok[-1]) if ok.size else 0
    return float(thr[k])


def choose_thresholds(
    probs: np.ndarray, targets: np.ndarray, task: str, label_names: list[str], policy: str | ThresholdPolicy
) -> dict[str, float]:
    """One threshold per class from validation probabilities/targets (NaN targets ignored)."""
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    out = {}
    for c, name in enumerate(label_names):
        m = known[:, c]
        try:
            out[name] = choose_threshold(probs[m, c], targets[m, c], policy)
        except ValueError:
            msg = (
                f"cannot choose a {parse_policy(policy)} threshold for {name!r}: validation has "
                f"{int((targets[m, c] == 1).sum())} positives of {int(m.sum())}; keeping {FALLBACK}"
            )
            log.warning(msg)
            warnings.warn(msg, MetricWarning, stacklevel=2)
            out[name] = FALLBACK
    return out

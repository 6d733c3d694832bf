"""Risk-coverage: how many errors a model makes on the cases it keeps, as it keeps more of them.

Sort the ``n`` cases from most to least certain and accept the first ``k`` (coverage ``k/n``).
With ``loss_i`` the error of case ``i`` (0/1 for one decision; the share of wrong labels for a
multi-label image):

* **selective risk** ``r(k) = sum_{i<=k} loss_i / k`` (error rate among accepted cases);
* **AURC** (Geifman et al., 2018) = ``mean_{k=1..n} r(k)``: area under the risk-coverage curve;
* **generalized risk** ``g(k) = sum_{i<=k} loss_i / n`` (the joint probability "accepted and wrong");
* **AUGRC** (Traub et al., NeurIPS 2024): area under the generalized risk-coverage curve, which
  does not let a few confident early errors dominate as AURC does. As in the paper's reference
  implementation (fd-shifts), the curve has one point per *distinct* uncertainty value (a tie group
  is accepted or referred together) plus the point (coverage 0, risk 0), and the area is the
  trapezoidal rule between them. Without ties this is ``mean_{k=1..n} g(k) - g(n) / (2n)``, i.e. the
  plain mean of ``g(k)`` less half a step at the end (error rate / 2n); with ties it does not depend
  on the input order.

Lower is better for both. :func:`risk_coverage_curve` and AURC keep the input order for ties (stable
sort); AUGRC groups them as above.
"""

from __future__ import annotations

import numpy as np

from chestxai.metrics.decisions import decide
from chestxai.metrics.task_rules import check_arrays, valid_mask


def decision_loss(probs: np.ndarray, targets: np.ndarray, task: str, thresholds=None) -> np.ndarray:
    """Per-image error in [0, 1]: share of known labels decided wrongly (argmax for multi-class).
    NaN for an image without any known target."""
    probs, targets = check_arrays(probs, targets, task)
    known = valid_mask(targets, task)
    wrong = (decide(probs, task, thresholds) != np.nan_to_num(targets)) & known
    if task == "multiclass":
        out = wrong.any(axis=1).astype(np.float64)
        out[~known[:, 0]] = np.nan
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        return wrong.sum(axis=1) / np.where(known.sum(axis=1) > 0, known.sum(axis=1), np.nan)


def _known(uncertainty: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as flat float64 arrays of equal length, images whose loss is unknown (NaN) dropped."""
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    loss = np.asarray(loss, dtype=np.float64).ravel()
    if u.shape != loss.shape:
        raise ValueError(f"{len(u)} uncertainties for {len(loss)} losses")
    ok = ~np.isnan(loss)
    u, loss = u[ok], loss[ok]
    return u, loss


def risk_coverage_curve(uncertainty: np.ndarray, loss: np.ndarray) -> dict[str, np.ndarray]:
    """``coverage``, ``selective_risk`` and ``generalized_risk`` for ``k = 1..n`` accepted cases
    (images with unknown loss are dropped)."""
    u, loss = _known(uncertainty, loss)
    n = len(u)
    if n == 0:
        return {"coverage": np.zeros(0), "selective_risk": np.zeros(0), "generalized_risk": np.zeros(0)}
    order = np.argsort(u, kind="stable")  # most certain first
    cum = np.cumsum(loss[order])
    k = np.arange(1, n + 1)
    return {"coverage": k / n, "selective_risk": cum / k, "generalized_risk": cum / n}


def aurc(uncertainty: np.ndarray, loss: np.ndarray) -> float:
    r = risk_coverage_curve(uncertainty, loss)["selective_risk"]
    return float(r.mean()) if len(r) else float("nan")


def augrc(uncertainty: np.ndarray, loss: np.ndarray) -> float:
    """Trapezoidal area under the generalized risk-coverage curve through (0, 0) and one point per
    distinct uncertainty value (Traub et al. 2024's definition; see the module docstring)."""
    u, loss = _known(uncertainty, loss)
    n = len(u)
    if n == 0:
        return float("nan")
    order = np.argsort(u, kind="stable")
    u, cum = u[order], np.cumsum(loss[order])
    last_of_group = np.r_[u[1:] != u[:-1], True]  # a threshold accepts a whole tie group
    coverage = np.r_[0.0, np.flatnonzero(last_of_group) + 1.0] / n
    generalized = np.r_[0.0, cum[last_of_group]] / n
    return float(np.sum(np.diff(coverage) * (generalized[1:] + generalized[:-1]) / 2))

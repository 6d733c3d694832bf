"""Split-conformal guarantees over a fixed model's probabilities (pure numpy/scipy kernels).

Calibrate on one labelled split (val), apply to another (test); every guarantee below is
*marginal* (over the draw of the calibration set and the new case) and holds only if the
calibration and new cases are exchangeable - the same population, no shift.

* **Multi-class prediction sets** (:func:`calibrate_sets`, :func:`predict_sets`). Score
  ``LAC`` = ``1 - p_true`` (Sadinle, Lei & Wasserman, JASA 2019); ``APS`` = the probability mass
  of the classes ranked above the true one plus ``U * p_true`` (Romano, Sesia & Candès, NeurIPS
  2020). The threshold is the split-conformal order statistic: the ``ceil((n+1)(1-alpha))``-th
  smallest calibration score (``np.quantile`` at level ``ceil((n+1)(1-alpha))/n``, method
  ``lower``), so ``P(y in C(x)) >= 1 - alpha`` (Vovk et al. 2005; Angelopoulos & Bates 2023).
  APS follows MAPIE 1.6's default exactly: the calibration score is randomised (``U`` uniform,
  ``np.random.RandomState(seed)``), the sets are not (``include_last_label=True``: every class
  up to and including the one whose cumulative mass reaches the threshold). ``class_conditional``
  (Mondrian, Vovk 2012) takes one threshold per true class from that class's calibration cases:
  ``P(y in C(x) | y = k) >= 1 - alpha`` for every class ``k``.
* **Binary triage** (:func:`calibrate_triage`, :func:`triage_bins`): the class-conditional LAC
  sets of ``[1 - p, p]`` read as bins - ``{0}`` negative, ``{1}`` positive, ``{0, 1}`` refer (both
  classes plausible), and an empty set (neither side's rule objects to either call) decided at the
  run's operating threshold. A diseased case lands in the negative bin only when 1 is not in its
  set, a healthy one in the positive bin only when 0 is not, so the Mondrian guarantee is
  **FNR <= alpha** (share of positives triaged negative) and **FPR <= alpha** (share of negatives
  triaged positive): per side, conformal risk control of the 0-1 miss (Angelopoulos et al.,
  "Conformal triage for medical imaging AI deployment", 2024, guarantee NPV/PPV instead with a
  Learn-then-Test step). A smaller ``alpha`` widens the refer band. NPV and PPV depend on the
  prevalence and are reported empirically with their CI, not guaranteed.
* **Multi-label conformal risk control of the FNR** (:func:`calibrate_crc`; Angelopoulos, Bates,
  Fisch, Lei & Schuster, ICLR 2024): one threshold ``t = 1 - lambda`` over all findings, a finding
  is called when ``p >= t``; per image the loss is the share of its positive findings not called
  (bounded by ``B = 1``, non-increasing in ``lambda``), and
  ``lambda_hat = inf{lambda : n/(n+1) R_n(lambda) + B/(n+1) <= alpha}`` gives
  ``E[FNR] <= alpha``. Calibrated and guaranteed over images with at least one known positive
  finding (the FNR of an image without one is undefined).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: MAPIE's tolerance (mapie._machine_precision.EPSILON): scores within it of the threshold are in
EPSILON = 1e-8
SCORES = ("lac", "aps")
BINS = ("negative", "positive", "refer")


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return a


def conformal_rank(n: int, alpha: float) -> int:
    """``ceil((n + 1)(1 - alpha))``: which order statistic of ``n`` scores is the threshold
    (> n means no finite threshold keeps the guarantee: every class goes in the set)."""
    return int(math.ceil((n + 1) * (1.0 - _check_alpha(alpha))))


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((n+1)(1-alpha))``-th smallest score; ``inf`` when that exceeds ``n`` (too few
    calibration cases for this alpha), ``nan``-free input required."""
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if np.isnan(s).any():
        raise ValueError("conformal scores contain NaN")
    k = conformal_rank(len(s), alpha)
    return float(s[k - 1]) if k <= len(s) else float("inf")


def _check_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be N x K with K >= 2 classes, got shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError("probabilities contain NaN")
    return p


def _check_labels(y: np.ndarray, n: int, k: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise ValueError(f"labels must be {n} whole class indices, got shape {y.shape}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k}), got {y.min()}..{y.max()}")
    return y


def _order(p: np.ndarray) -> np.ndarray:
    """Classes by decreasing probability, ties as MAPIE breaks them (reversed ``argsort``)."""
    return np.fliplr(np.argsort(p, axis=1))


def lac_scores(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``1 - p_true`` per case."""
    p = _check_probs(probs)
    y = _check_labels(y, len(p), p.shape[1])
    return 1.0 - p[np.arange(len(p)), y]


def aps_scores(probs: np.ndarray, y: np.ndarray, randomized: bool = True, seed: int = 0) -> np.ndarray:
    """Cumulative mass of the classes ranked above and including the true one, minus
    ``U * p_true`` when ``randomized`` (``U ~ RandomState(seed).uniform``, as MAPIE draws it)."""
    p = _check_probs(probs)
    y = _check_labels(y, len(p), p.shape[1])
    order = _order(p)
    cum = np.cumsum(np.take_along_axis(p, order, axis=1), axis=1)
    position = np.argmax(order == y[:, None], axis=1)
    score = cum[np.arange(len(p)), position]
    if randomized:
        u = np.random.RandomState(seed).uniform(size=len(p))
        score = score - u * p[np.arange(len(p)), y]
    return score


@dataclass(frozen=True)
class SetCalibration:
    """Thresholds of calibrated prediction sets: ``qhat`` one per class (all equal unless
    ``class_conditional``); ``n`` calibration cases per class (or in all, marginally)."""

    score: str
    alpha: float
    class_conditional: bool
    qhat: tuple[float, ...]
    n: tuple[int, ...]
    randomized: bool = True

    def to_dict(self) -> dict:
        finite = [q if math.isfinite(q) else None for q in self.qhat]
        return {
            "score": self.score,
            "alpha": self.alpha,
            "class_conditional": self.class_conditional,
            "qhat": finite,
            "n_calibration": list(self.n),
            "randomized_calibration_score": self.randomized if self.score == "aps" else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SetCalibration:
        q = tuple(float("inf") if v is None else float(v) for v in d["qhat"])
        return cls(
            d["score"], float(d["alpha"]), bool(d["class_conditional"]), q, tuple(d["n_calibration"]),
            bool(d.get("randomized_calibration_score") or False),
        )  # fmt: skip


def calibrate_sets(
    probs: np.ndarray,
    y: np.ndarray,
    alpha: float = 0.1,
    score: str = "lac",
    class_conditional: bool = False,
    randomized: bool = True,
    seed: int = 0,
) -> SetCalibration:
    """Calibrate LAC or APS sets on ``probs`` (``N x K``) with true classes ``y``."""
    if score not in SCORES:
        raise ValueError(f"conformal score {score!r}: choose one of {', '.join(SCORES)}")
    alpha = _check_alpha(alpha)
    p = _check_probs(probs)
    y = _check_labels(y, len(p), p.shape[1])
    if not len(p):
        raise ValueError("no calibration cases")
    s = lac_scores(p, y) if score == "lac" else aps_scores(p, y, randomized, seed)
    k = p.shape[1]
    if class_conditional:
        qhat = tuple(conformal_quantile(s[y == c], alpha) for c in range(k))
        n = tuple(int((y == c).sum()) for c in range(k))
    else:
        qhat, n = (conformal_quantile(s, alpha),) * k, (len(s),)
    return SetCalibration(score, alpha, class_conditional, qhat, n, randomized)


def predict_sets(probs: np.ndarray, calibration: SetCalibration) -> np.ndarray:
    """Bool ``N x K``: class ``k`` is in the set of case ``i``."""
    p = _check_probs(probs)
    q = np.asarray(calibration.qhat, dtype=np.float64)
    if len(q) != p.shape[1]:
        raise ValueError(f"calibrated for {len(q)} classes, got probabilities for {p.shape[1]}")
    if calibration.score == "lac":
        return (1.0 - p) - q[None, :] <= EPSILON
    # APS, MAPIE's include_last_label=True: classes in decreasing order up to and including the
    # first whose cumulative mass reaches the threshold, i.e. the top class and every class whose
    # mass *before* it is still below the threshold (its own class's threshold if Mondrian)
    order = _order(p)
    sorted_p = np.take_along_axis(p, order, axis=1)
    inv = np.argsort(order, axis=1)  # position of each class in the decreasing order
    before = np.take_along_axis(np.cumsum(sorted_p, axis=1) - sorted_p, inv, axis=1)
    included = (inv == 0) | (before < q[None, :] - EPSILON)
    # ties with the last included class go in too (MAPIE keeps every p >= p_last)
    last = np.where(included, p, np.inf).min(axis=1, keepdims=True)
    return included | (p - last >= -EPSILON)


def calibrate_triage(p: np.ndarray, y: np.ndarray, alpha: float = 0.1) -> SetCalibration:
    """Binary triage thresholds from ``p`` (probability of the positive class, ``N``) and
    ``y`` in {0, 1}: class-conditional LAC on ``[1 - p, p]`` (see the module doc)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    yy = _check_labels(np.asarray(y).ravel(), len(p), 2)
    if not (yy == 0).any() or not (yy == 1).any():
        raise ValueError("triage needs calibration cases of both classes (negatives and positives)")
    return calibrate_sets(np.column_stack([1 - p, p]), yy, alpha, "lac", class_conditional=True)


def triage_bins(p: np.ndarray, calibration: SetCalibration, threshold: float = 0.5) -> np.ndarray:
    """``'negative'`` / ``'positive'`` / ``'refer'`` per case: ``{0}``, ``{1}``, ``{0, 1}``; an
    empty set is called at ``threshold`` (either call keeps both guarantees, see the module doc)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    sets = predict_sets(np.column_stack([1 - p, p]), calibration)
    out = np.full(len(p), "refer", dtype=object)
    empty = ~sets.any(axis=1)
    out[(sets[:, 0] & ~sets[:, 1]) | (empty & (p < threshold))] = "negative"
    out[(sets[:, 1] & ~sets[:, 0]) | (empty & (p >= threshold))] = "positive"
    return out


def triage_cutoffs(calibration: SetCalibration) -> dict:
    """The bin rule in probability terms: 0 is in the set when ``p <= qhat_0 (+eps)``, 1 when
    ``p >= 1 - qhat_1 (-eps)``."""
    q0, q1 = calibration.qhat
    return {
        "negative_in_set_if_p_at_most": q0 if math.isfinite(q0) else None,
        "positive_in_set_if_p_at_least": (1.0 - q1) if math.isfinite(q1) else None,
    }


@dataclass(frozen=True)
class CRCCalibration:
    """One threshold over all findings: call a finding when ``p >= threshold`` (``= 1 - lambda``)."""

    alpha: float
    threshold: float
    n: int

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "threshold": self.threshold,
            "lambda": 1.0 - self.threshold,
            "n_calibration": self.n,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CRCCalibration:
        return cls(float(d["alpha"]), float(d["threshold"]), int(d["n_calibration"]))


def image_fnr(called: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per image, the share of its known positive findings not called (NaN: no positive)."""
    t = np.asarray(targets, dtype=np.float64)
    pos = t == 1
    n_pos = pos.sum(axis=1)
    missed = (pos & ~np.asarray(called, bool)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, missed / np.maximum(n_pos, 1), np.nan)


def calibrate_crc(probs: np.ndarray, targets: np.ndarray, alpha: float = 0.1) -> CRCCalibration:
    """``lambda_hat`` of conformal risk control of the FNR (B = 1), computed exactly: the loss only
    changes where the threshold passes a positive finding's probability."""
    alpha = _check_alpha(alpha)
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"probabilities {p.shape} and targets {t.shape} must both be N x L")
    pos = t == 1
    keep = pos.any(axis=1)
    p, pos = p[keep], pos[keep]
    n = len(p)
    if n == 0:
        raise ValueError("no calibration image has a positive finding; the FNR cannot be controlled")
    bound = alpha * (n + 1) - 1.0  # sum of losses allowed: n/(n+1) R + 1/(n+1) <= alpha
    if bound < 0:  # too few images for this alpha: call every finding
        return CRCCalibration(alpha, 0.0, n)
    rows, cols = np.nonzero(pos)
    w = 1.0 / pos.sum(axis=1)[rows]
    pv = p[rows, cols]
    order = np.argsort(-pv, kind="stable")
    loss_sum = n - np.cumsum(w[order])  # after calling every finding with p >= pv[order[j]]
    ok = np.nonzero(loss_sum <= bound + 1e-12)[0]
    threshold = float(pv[order[ok[0]]]) if len(ok) else 0.0
    return CRCCalibration(alpha, threshold, n)


def binomial_ci(k: int, n: int, level: float = 0.95) -> list[float | None]:
    """Clopper-Pearson (exact) interval of ``k`` successes in ``n`` trials; ``[None, None]`` when n = 0."""
    if n == 0:
        return [None, None]
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return [float(ci.low), float(ci.high)]


def _rate(k: int, n: int, level: float) -> dict:
    return {"value": (k / n) if n else None, "k": int(k), "n": int(n), "ci": binomial_ci(k, n, level)}


def set_summary(sets: np.ndarray, y: np.ndarray, level: float = 0.95) -> dict:
    """Empirical coverage (Clopper-Pearson CI), per-class coverage, mean set size, share of empty
    and of ambiguous (more than one class: referred) sets."""
    s = np.asarray(sets, bool)
    y = _check_labels(y, len(s), s.shape[1])
    hit = s[np.arange(len(s)), y]
    size = s.sum(axis=1)
    return {
        "coverage": _rate(int(hit.sum()), len(s), level),
        "coverage_by_class": [
            _rate(int(hit[y == c].sum()), int((y == c).sum()), level) for c in range(s.shape[1])
        ],
        "mean_set_size": float(size.mean()) if len(s) else None,
        "set_size_counts": {str(k): int((size == k).sum()) for k in range(s.shape[1] + 1)},
        "share_empty": float((size == 0).mean()) if len(s) else None,
        "share_referred": float((size != 1).mean()) if len(s) else None,
    }


def triage_summary(bins: np.ndarray, y: np.ndarray, level: float = 0.95) -> dict:
    """FNR / FPR (the guaranteed rates), NPV / PPV (empirical), share referred, each with its
    Clopper-Pearson CI."""
    b = np.asarray(bins).astype(str)
    y = np.asarray(y).astype(int).ravel()
    neg, posb = b == "negative", b == "positive"
    return {
        "fnr": _rate(int((neg & (y == 1)).sum()), int((y == 1).sum()), level),
        "fpr": _rate(int((posb & (y == 0)).sum()), int((y == 0).sum()), level),
        "npv": _rate(int((neg & (y == 0)).sum()), int(neg.sum()), level),
        "ppv": _rate(int((posb & (y == 1)).sum()), int(posb.sum()), level),
        "share_referred": _rate(int((b == "refer").sum()), len(b), level),
        "counts": {k: int((b == k).sum()) for k in BINS},
    }


def crc_summary(
    called: np.ndarray,
    targets: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    groups=None,
) -> dict:
    """Mean per-image FNR over images with a positive finding, with a (patient) bootstrap
    percentile CI; mean number of findings called; share of images with none called."""
    from chestxai.metrics.bootstrap import percentile_interval, resample_weights

    c = np.asarray(called, bool)
    fnr = image_fnr(c, targets)
    has = ~np.isnan(fnr)
    ci: list = [None, None]
    if has.any() and n_boot:
        g = None if groups is None else np.asarray(groups)[has]
        reps = np.concatenate(list(resample_weights(int(has.sum()), g, n_boot, seed)))
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = (reps @ fnr[has]) / reps.sum(axis=1)
        ci = list(percentile_interval(vals, level))
    return {
        "fnr": {"value": float(fnr[has].mean()) if has.any() else None, "n": int(has.sum()), "ci": ci},
        "mean_set_size": float(c.sum(axis=1).mean()) if len(c) else None,
        "share_empty": float((c.sum(axis=1) == 0).mean()) if len(c) else None,
    }

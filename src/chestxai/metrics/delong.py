"""DeLong's test for the difference between two correlated ROC-AUCs (same images, two models),
and its unpaired form for two independent ROC curves (one model, two sets of images: a run's own
test split against another hospital's, :func:`delong_unpaired`).

scikit-learn has no DeLong test (nor any AUC variance), so it is written here. The AUC is the
Mann-Whitney statistic; DeLong, DeLong & Clarke-Pearson (1988) estimate its variance, and the
covariance between two AUCs measured on the same cases, from per-case "placement values": for
each positive, the fraction of negatives it out-scores (ties count one half), and for each
negative, the fraction of positives that out-score it. Placement values come from midranks, so
the whole computation is O(n log n) (the formulation of Sun & Xu, 2014).

Cases are treated as independent: with several images per patient the p-value is optimistic;
:func:`chestxai.metrics.significance.paired_bootstrap_auc` resamples patients instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class DelongResult:
    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    se: float  # standard error of the difference
    z: float
    p_value: float  # two-sided


def auc_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (``k``) and their DeLong covariance matrix (``k x k``) for ``k x n`` score rows."""
    y = np.asarray(y, dtype=np.float64)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least two positive and two negative cases, got {m} and {n}")
    rank_pos = rankdata(pos, axis=1)  # midranks among positives
    rank_neg = rankdata(neg, axis=1)
    rank_all = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    # positive i out-scores (rank_all - rank_pos) negatives; dividing by n gives its placement value
    v_pos = (rank_all[:, :m] - rank_pos) / n
    # negative j is out-scored by m - (rank_all - rank_neg) positives
    v_neg = 1.0 - (rank_all[:, m:] - rank_neg) / m
    aucs = v_pos.mean(axis=1)
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return aucs, cov


def delong_test(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DelongResult:
    """Two-sided test of AUC(a) == AUC(b) for two predictors scored on the same cases.

    ``y`` is 0/1 (NaN entries are dropped from all three arrays). Identical predictors give
    ``diff = 0`` and ``p = 1``.
    """
    y = np.asarray(y, dtype=np.float64)
    keep = ~np.isnan(y)
    aucs, cov = auc_covariance(y[keep], np.stack([np.asarray(scores_a)[keep], np.asarray(scores_b)[keep]]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    if se <= 1e-12:  # the two predictors rank every case identically
        z, p = 0.0, 1.0 if abs(diff) <= 1e-12 else 0.0
    else:
        z = diff / se
        p = math.erfc(abs(z) / math.sqrt(2.0))
    return DelongResult(float(aucs[0]), float(aucs[1]), diff, se, float(z), float(p))


def delong_unpaired(
    y_a: np.ndarray, scores_a: np.ndarray, y_b: np.ndarray, scores_b: np.ndarray
) -> DelongResult:
    """Two-sided test of AUC(a) == AUC(b) for two ROC curves measured on *independent* cases
    (e.g. internal vs external test images of one model).

    Each AUC's DeLong variance (``S10/m + S01/n`` from its own placement values) is estimated on
    its own set; with no shared cases the covariance term is zero, so
    ``z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b)`` (DeLong et al. 1988; the "unpaired" test of
    pROC's ``roc.test``). NaN entries of ``y_a`` / ``y_b`` are dropped.
    """
    aucs, var = [], []
    for y, s in ((y_a, scores_a), (y_b, scores_b)):
        y = np.asarray(y, dtype=np.float64)
        keep = ~np.isnan(y)
        a, cov = auc_covariance(y[keep], np.asarray(s, dtype=np.float64)[keep])
        aucs.append(float(a[0]))
        var.append(float(cov[0, 0]))
    diff = aucs[0] - aucs[1]
    se = math.sqrt(max(var[0] + var[1], 0.0))
    if se <= 1e-12:  # both sets separated perfectly (or not at all): no variance to test against
        z, p = 0.0, 1.0 if abs(diff) <= 1e-12 else 0.0
    else:
        z = diff / se
        p = math.erfc(abs(z) / math.sqrt(2.0))
    return DelongResult(aucs[0], aucs[1], diff, se, float(z), float(p))

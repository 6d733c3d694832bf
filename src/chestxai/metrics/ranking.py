"""ROC-AUC and average precision for many weightings of one sample at once (the bootstrap kernel).

A bootstrap replicate is the original sample with integer multiplicities (how often each image,
or each patient's images, was drawn). Computing the ranking metrics from a ``B x n`` weight
matrix sorts the scores once and needs no copies of resampled arrays; calling
``sklearn.metrics.roc_auc_score`` a thousand times per class would dominate evaluation time.
With all weights 1 these equal scikit-learn's ``roc_auc_score`` and ``average_precision_score``
(with ``sample_weight`` they match too; the tests check both).
"""

from __future__ import annotations

import numpy as np


def _tie_groups(scores: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and the start index of each run of equal scores in that order."""
    order = np.argsort(-scores if descending else scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, int)
    return order, starts


def _grouped(weights: np.ndarray, y: np.ndarray, order: np.ndarray, starts: np.ndarray):
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))[:, order]
    yy = y[order]
    pos = np.add.reduceat(w * yy, starts, axis=1)
    neg = np.add.reduceat(w * (1.0 - yy), starts, axis=1)
    return pos, neg


def weighted_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC per weight row: P(score_pos > score_neg) + 0.5 P(tie). ``weights`` is ``B x n``.

    NaN where a row has no positive or no negative weight (AUC undefined).
    """
    return RankedScores(scores, y).auc(weights)


def weighted_average_precision(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision per weight row: sum over descending thresholds of (R_k - R_{k-1}) P_k.

    This is scikit-learn's definition (step-wise, no interpolation). NaN without positives.
    """
    return RankedScores(scores, y).average_precision(weights)


class RankedScores:
    """One class's scores sorted once, for many bootstrap weightings (see the module doc).

    ``auc(weights)`` and ``average_precision(weights)`` take ``B x n`` weights aligned with the
    original (unsorted) order and return ``B`` values.
    """

    def __init__(self, scores: np.ndarray, y: np.ndarray):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self._asc = _tie_groups(self.scores, descending=False)
        self._desc = _tie_groups(self.scores, descending=True)

    def auc(self, weights: np.ndarray) -> np.ndarray:
        b = np.atleast_2d(weights).shape[0]
        if len(self.scores) == 0:
            return np.full(b, np.nan)
        pos, neg = _grouped(weights, self.y, *self._asc)
        neg_below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = wins / (n_pos * n_neg)
        auc[(n_pos <= 0) | (n_neg <= 0)] = np.nan
        return auc

    def average_precision(self, weights: np.ndarray) -> np.ndarray:
        b = np.atleast_2d(weights).shape[0]
        if len(self.scores) == 0:
            return np.full(b, np.nan)
        pos, neg = _grouped(weights, self.y, *self._desc)
        tp = np.cumsum(pos, axis=1)
        fp = np.cumsum(neg, axis=1)
        n_pos = tp[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            recall_step = pos / n_pos
        ap = (recall_step * precision).sum(axis=1)
        ap[n_pos[:, 0] <= 0] = np.nan
        return ap

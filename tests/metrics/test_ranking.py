"""The vectorised bootstrap kernels equal scikit-learn's AUC and AP, with and without weights."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from chestxai.metrics.ranking import RankedScores, weighted_auc, weighted_average_precision


@pytest.mark.parametrize("seed", range(5))
def test_weighted_kernels_match_sklearn_sample_weight(seed):
    rng = np.random.default_rng(seed)
    n = 60
    scores = np.round(rng.random(n), 1)  # many ties
    y = (rng.random(n) < 0.4).astype(float)
    weights = rng.integers(0, 3, size=(4, n)).astype(float)  # bootstrap multiplicities incl. 0
    auc = weighted_auc(scores, y, weights)
    ap = weighted_average_precision(scores, y, weights)
    for k in range(len(weights)):
        w = weights[k]
        assert auc[k] == pytest.approx(roc_auc_score(y, scores, sample_weight=w))
        assert ap[k] == pytest.approx(average_precision_score(y, scores, sample_weight=w))


def test_unit_weights_equal_plain_sklearn():
    rng = np.random.default_rng(9)
    scores, y = rng.random(100), (rng.random(100) < 0.3).astype(float)
    r = RankedScores(scores, y)
    assert r.auc(np.ones((1, 100)))[0] == pytest.approx(roc_auc_score(y, scores))
    assert r.average_precision(np.ones((1, 100)))[0] == pytest.approx(average_precision_score(y, scores))


def test_undefined_rows_are_nan():
    scores, y = np.array([0.2, 0.8, 0.5]), np.array([0.0, 1.0, 0.0])
    w = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # no positives; no negatives
    assert np.isnan(weighted_auc(scores, y, w)).all()
    assert np.isnan(weighted_average_precision(scores, y, w)[0])
    assert weighted_average_precision(scores, y, w)[1] == pytest.approx(1.0)

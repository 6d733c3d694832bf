"""Uncertainty measures over samples: known values, zero variance, weights."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.uncertainty.measures import (
    binary_entropy,
    confidence_uncertainty,
    image_uncertainty,
    softmax_uncertainty,
    summarize_samples,
)


def test_identical_samples_have_zero_std_and_zero_mutual_information():
    s = np.repeat(np.array([[[0.2, 0.9]]]), 5, axis=0)  # 5 x 1 x 2
    out = summarize_samples(s)
    assert np.allclose(out["std"], 0) and np.allclose(out["mutual_information"], 0)
    assert np.allclose(out["entropy"], binary_entropy(np.array([[0.2, 0.9]])))


def test_disagreeing_confident_samples_are_all_epistemic():
    s = np.array([[[0.0]], [[1.0]]])  # two confident, opposite samples
    out = summarize_samples(s)
    assert out["mean"][0, 0] == pytest.approx(0.5)
    assert out["std"][0, 0] == pytest.approx(0.5)
    assert out["entropy"][0, 0] == pytest.approx(np.log(2))
    assert out["expected_entropy"][0, 0] == pytest.approx(0.0, abs=1e-9)
    assert out["mutual_information"][0, 0] == pytest.approx(np.log(2))


def test_weights_weight_the_samples_and_are_checked():
    s = np.array([[[0.1]], [[0.9]]])
    assert summarize_samples(s, np.array([0.75, 0.25]))["mean"][0, 0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="summing to 1"):
        summarize_samples(s, np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="K x B x L"):
        summarize_samples(np.zeros((3, 4)))


def test_image_scores_take_the_most_uncertain_label_and_confidence_is_distance_to_threshold():
    m = np.array([[0.1, 0.4], [0.3, 0.2]])
    assert image_uncertainty(m, "multilabel").tolist() == [0.4, 0.3]
    p = np.array([[0.5], [0.9], [0.2]])
    u = confidence_uncertainty(p, np.array([0.5]), "binary")
    assert np.argmax(u) == 0 and np.argmin(u) == 1
    assert confidence_uncertainty(np.array([[0.7, 0.3], [0.5, 0.5]]), None, "multiclass").tolist() == [
        0.30000000000000004,
        0.5,
    ]


def test_softmax_baseline_is_max_probability_or_distance_from_half():
    """Bernhardt et al.'s baseline: 1 - max p (softmax); 0.5 - |p - 0.5| (sigmoid), threshold-free."""
    mc = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    np.testing.assert_allclose(softmax_uncertainty(mc, "multiclass"), [0.3, 0.6])
    binary = np.array([[0.9], [0.45], [0.02]])
    np.testing.assert_allclose(softmax_uncertainty(binary, "binary"), [0.1, 0.45, 0.02])
    # multi-label: the label closest to 0.5 decides; an operating threshold plays no part
    ml = np.array([[0.9, 0.6], [0.99, 0.01]])
    np.testing.assert_allclose(softmax_uncertainty(ml, "multilabel"), [0.4, 0.01])

"""The one decision rule: argmax for multi-class, ``p >= threshold`` otherwise, after the
temperature the thresholds were chosen with."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.metrics.calibration import apply_temperature
from chestxai.metrics.decisions import decide


def test_sigmoid_tasks_compare_each_column_with_its_threshold_inclusively() -> None:
    probs = np.array([[0.3, 0.7], [0.29, 0.71], [0.9, 0.1]])
    out = decide(probs, "multilabel", [0.3, 0.71])
    assert out.dtype == bool
    assert out.tolist() == [[True, False], [False, True], [True, False]]
    assert decide(probs[:, :1], "binary").tolist() == [[False], [False], [True]]  # 0.5 by default


def test_multiclass_is_the_argmax_whatever_the_thresholds_and_temperature() -> None:
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    expected = [[False, True, False], [True, False, False]]
    assert decide(probs, "multiclass").tolist() == expected
    assert decide(probs, "multiclass", [0.9, 0.9, 0.01], temperature=3.0).tolist() == expected
    assert decide(np.zeros((0, 3)), "multiclass").shape == (0, 3)


def test_the_temperature_scales_probabilities_before_the_thresholds() -> None:
    probs = np.array([[0.2], [0.8]])
    # T = 2 pulls 0.2 up to 1/3: above a 0.3 threshold only once scaled
    assert apply_temperature(probs, 2.0, "binary")[0, 0] == pytest.approx(1 / 3)
    assert decide(probs, "binary", [0.3]).ravel().tolist() == [False, True]
    assert decide(probs, "binary", [0.3], temperature=2.0).ravel().tolist() == [True, True]
    assert decide(probs, "binary", [0.3], temperature=None).ravel().tolist() == [False, True]


def test_thresholds_that_do_not_fit_the_columns_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 2\) do not match 3 thresholds"):
        decide(np.full((2, 2), 0.5), "multilabel", [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="N x L"):
        decide(np.full(3, 0.5), "binary")

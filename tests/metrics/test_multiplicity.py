"""Holm-adjusted p-values beside the raw per-class DeLong p-values (issue 20 item 8)."""

from __future__ import annotations

import numpy as np
import pytest


def test_holm_adjust_on_a_hand_example():
    from chestxai.metrics.significance import holm_adjust

    # finite p sorted: .005 .01 .03 .04 (m = 4) -> 4x.005=.02, 3x.01=.03, 2x.03=.06, 1x.04=.04 -> running max
    out = holm_adjust([0.01, 0.04, 0.03, np.nan, 0.005])
    assert out[[0, 1, 2, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and np.isnan(out[3])
    assert holm_adjust([0.5, 0.9]).tolist() == [1.0, 1.0]  # capped at 1
    assert holm_adjust([0.02]).tolist() == [0.02]  # one test: unchanged
    assert np.isnan(holm_adjust([np.nan])).all() and holm_adjust([]).size == 0

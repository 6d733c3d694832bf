"""Operating thresholds chosen on validation: Youden, fixed sensitivity / specificity."""

import numpy as np
import pytest

from chestxai.metrics.classification import MetricWarning
from chestxai.metrics.threshold_policy import choose_threshold, choose_thresholds, parse_policy

# hand-made: positives at 0.3, 0.7, 0.8, 0.9; negatives at 0.1, 0.2, 0.4, 0.6
SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
Y = np.array([0, 0, 1, 0, 0, 1, 1, 1.0])


def test_youden_on_a_hand_made_case():
    # t=0.7: sens 3/4, spec 4/4 -> J=0.75; t=0.3: sens 1, spec 2/4 -> J=0.5; t=0.8: J=0.5
    assert choose_threshold(SCORES, Y, "youden") == pytest.approx(0.7)


def test_fixed_sensitivity_and_specificity():
    assert choose_threshold(SCORES, Y, "sensitivity:0.95") == pytest.approx(0.3)  # all 4 positives
    assert choose_threshold(SCORES, Y, "sensitivity:0.75") == pytest.approx(0.7)  # 3 of 4 suffice
    assert choose_threshold(SCORES, Y, "specificity:0.95") == pytest.approx(0.7)  # no false positive
    assert choose_threshold(SCORES, Y, "specificity:0.70") == pytest.approx(0.6)  # 1 of 4 allowed
    assert choose_threshold(SCORES, Y, "0.5") == 0.5


@pytest.mark.parametrize("bad", ["yoden", "sensitivity:abc", "1.5", "specificity:0", ""])
def test_bad_policies_name_the_flag(bad):
    with pytest.raises(ValueError, match="--threshold-policy"):
        parse_policy(bad)


def test_policy_round_trips_as_text():
    for text in ("youden", "0.5", "sensitivity:0.95", "specificity:0.9"):
        assert str(parse_policy(text)) == text


def test_class_without_positives_keeps_half_with_warning():
    probs = np.c_[SCORES, SCORES]
    targets = np.c_[Y, np.zeros_like(Y)]
    with pytest.warns(MetricWarning, match="'b'"):
        th = choose_thresholds(probs, targets, "multilabel", ["a", "b"], "youden")
    assert th == {"a": pytest.approx(0.7), "b": 0.5}

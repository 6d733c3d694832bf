"""What a statistical reviewer flagged in metrics.json and the reports (issue 20 item 8): small-n
intervals without a warning, "N images of N patients" and "resampling patients" on a dataset without
patient ids, and a multi-label "correct / wrong" histogram that silently meant exact match."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.evaluation.evaluate import evaluate_predictions
from chestxai.report.sections import metrics_section


def _binary_pair(n_pos_rare: int = 3):
    """Two labels on 60 images: 'common' with 30 positives, 'rare' with ``n_pos_rare``."""
    rng = np.random.default_rng(0)
    y = np.zeros((60, 2))
    y[:30, 0] = 1
    y[:n_pos_rare, 1] = 1
    p = np.clip(y * 0.4 + rng.random((60, 2)) * 0.6, 0, 1)
    return p, y


def test_intervals_of_classes_with_few_positives_are_flagged_in_metrics_json_and_the_report():
    p, y = _binary_pair(3)
    out = evaluate_predictions(p, y, "multilabel", ["common", "rare"], n_boot=50)
    small = out["small_n"]
    assert small["min_count"] == 10 and set(small["classes"]) == {"rare"}
    assert small["classes"]["rare"] == {"n_pos": 3, "n_neg": 57} and "not reliable" in small["note"]
    html = metrics_section(out | {"split": "test"})
    assert "Small samples: rare (3 positives, 57 negatives)" in html
    p, y = _binary_pair(12)
    out = evaluate_predictions(p, y, "multilabel", ["common", "rare"], n_boot=50)
    assert out["small_n"]["classes"] == {} and "Small samples" not in metrics_section(out)


def test_one_id_per_image_is_not_called_patients():
    p, y = _binary_pair(12)
    ids = np.array([f"test_{i:05d}" for i in range(60)])  # MedMNIST: the image id stands in for a patient
    out = evaluate_predictions(p, y, "multilabel", ["common", "rare"], patient_ids=ids, n_boot=20)
    assert out["bootstrap"]["unit"] == "image" and "no patient ids" in out["bootstrap"]["unit_note"]
    html = metrics_section(out | {"split": "test"})
    assert "60 images (no patient ids group them" in html and "resampling images" in html
    assert "of 60 patients" not in html and "resampling patients" not in html
    grouped = np.array([f"p{i // 2}" for i in range(60)])
    out = evaluate_predictions(p, y, "multilabel", ["common", "rare"], patient_ids=grouped, n_boot=20)
    assert out["bootstrap"]["unit"] == "patient" and out["n_patients"] == 30
    assert "60 images of 30 patients" in metrics_section(out | {"split": "test"})


def test_multilabel_correctness_histogram_says_it_means_every_label_right(monkeypatch, tmp_path):
    from chestxai.uncertainty import figures

    seen = {}

    def keep(fig, path):
        seen["labels"] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        return path

    monkeypatch.setattr(figures, "save_figure", keep)
    u = {"entropy": np.linspace(0, 1, 57)}
    figures.plot_confidence_correctness(u, np.zeros(57, bool), tmp_path / "c.png", "multilabel")
    assert seen["labels"] == ["every label right (n=0)", "some label wrong (n=57)"]
    figures.plot_confidence_correctness(u, np.ones(57, bool), tmp_path / "c.png", "binary")
    assert seen["labels"] == ["correct (n=57)", "wrong (n=0)"]
    assert "exact match" in figures.FIGURES["confidence_correctness.png"]


@pytest.mark.parametrize("unit", ["image", "patient"])
def test_uncertainty_report_names_the_unit_and_says_why_its_auc_differs_from_evaluate(unit):
    from chestxai.report.uncertainty import method_head

    s = {"passes": 8, "n_images": 624, "split": "test", "n_patients": 624 if unit == "image" else 300,
         "batching": "b", "bootstrap": {"unit": unit}, "roc_auc": {"mean_probs": 0.471, "deterministic": 0.508}}  # fmt: skip
    head, auc = method_head(s, "tta")
    if unit == "image":
        assert "624 patients" not in head and "no patient ids" in head
    else:
        assert "300 patients" in head
    assert "averaged over the tta passes: 0.471" in auc and "0.508" in auc and "chestxai evaluate" in auc

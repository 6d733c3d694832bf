"""The report says in words whether a method's maps change from image to image (Arun et al.'s
random-pairs baseline) and why each randomisation row whose maps stayed alike did so."""

from __future__ import annotations

import html

from chestxai.report.gallery import independence_line, localization_section
from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import write_json

ALIKE = {"ssim": 0.68, "spearman": 0.71, "n_pairs": 50, "n_maps": 32}
DIFFERENT = {"ssim": 0.12, "spearman": 0.2, "n_pairs": 50, "n_maps": 32}


def test_the_sentence_appears_only_for_image_independent_maps():
    same = independence_line("hirescam", {"random_pairs": ALIKE})
    assert same.startswith("hirescam's maps hardly change from image to image")
    assert "0.71" in same and "0.68" in same and "50 random pairs" in same
    differ = independence_line("layercam", {"random_pairs": DIFFERENT})
    assert "differ from image to image" in differ and "hardly change" not in differ
    assert "0.20" in differ and "0.12" in differ
    assert independence_line("gradcam", {}) is None
    mostly_empty = {**DIFFERENT, "spearman": 0.0, "n_empty_maps": 28}  # no ranks: nothing to say
    assert independence_line("gradcam", {"random_pairs": mostly_empty}) is None


def test_localization_section_shows_pairs_and_the_why_of_an_unchanged_row(tmp_path):
    why = "re-initialising backbone.layer4.1 changed its output by only 3.8% on these images"
    sanity = {
        "layer": "backbone.layer1.1",
        "n_images": 32,
        "threshold": 0.5,
        "passed": True,
        "verdict": "passed: ...",
        "baseline": ALIKE,
        "baseline_ssim": 0.68,
        "cascading": [
            {"randomised": "head", "spearman": 0.2, "ssim": 0.1, "n_constant": 0},
        ],
        "independent": [
            {"randomised": "backbone.layer4.1", "spearman": 1.0, "ssim": 0.99, "n_constant": 0,
             "output_change": 0.038, "why": why},
        ],
    }  # fmt: skip
    methods = {
        "hirescam": {
            "method": "hirescam",
            "layer": "backbone.layer1.1",
            "random_pairs": ALIKE,
            "sanity": sanity,
        },
        "layercam": {"method": "layercam", "layer": "backbone.layer1.1", "random_pairs": DIFFERENT},
    }
    run = RunDir(tmp_path)
    write_json(
        {
            "methods": methods,
            "localization_table": [],
            "sanity_table": [{"method": "hirescam", "baseline_ssim": 0.68}],
        },
        run.explain_metrics,
    )
    text = html.unescape(localization_section(run))
    assert "Maps of different images compared" in text
    assert "hirescam's maps hardly change from image to image" in text.lower()
    assert "layercam's maps differ from image to image" in text
    assert "Arun et al.'s baseline: 50 random pairs" in text and "mean SSIM 0.68" in text
    assert why in text and "output_change" in text

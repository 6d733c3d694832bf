"""The verdict per (method, layer) and the recommended pipeline (scorecard/verdict.py), on hand-made entries."""

from __future__ import annotations

import pytest

from chestxai.scorecard.verdict import JOINT_NOTE, recommend, verdict


def _ci(v, lo=None, hi=None):
    return {"value": v, "ci_low": lo, "ci_high": hi}


def _loc(hit=0.8, miou=0.3, control_hit=0.2, control_miou=0.05, diff_low=0.1, better=True):
    return {
        "hit_rate": _ci(hit),
        "miou_otsu": _ci(miou),
        "control": {"hit_rate": _ci(control_hit), "miou_otsu": _ci(control_miou), "method": "random"},
        "versus_control": {
            "hit_rate": {"difference": _ci(hit - control_hit, diff_low, 0.9), "better": better},
            "miou_otsu": {"difference": _ci(miou - control_miou, diff_low, 0.5), "better": better},
        },
    }


def _sim(passed, why="rule"):
    return {"pass": passed, "verdict": f"{'passed' if passed else 'FAILED'}: {why}", "rule": why}


def _entry(**over):
    entry = {
        "localization": _loc(),
        "randomization": _sim(True),
        "image_agreement": {"ssim": 0.3, "spearman": 0.2, "n_pairs": 50},
    }
    return entry | over


def test_every_measured_criterion_passes_trusted():
    v = verdict(_entry(repeatability=_sim(True)), "hirescam at layer2")
    assert v["trusted"] is True
    assert v["passes"] == ["localization", "randomization", "repeatability", "image_dependence"]
    assert v["fails"] == [] and v["not_measured"] == ["reproducibility"]
    assert (
        v["line"].startswith("hirescam at layer2: trusted") and "not measured: reproducibility" in v["line"]
    )
    assert v["note"] == JOINT_NOTE and "model and the method together" in JOINT_NOTE
    assert "hit_rate 0.80 vs random 0.20" in v["criteria"]["localization"]["why"]


def test_a_failed_randomisation_is_not_trusted_and_says_why():
    v = verdict(_entry(randomization=_sim(False, "final SSIM 0.95 not below 0.40")), "gradcam at layer4")
    assert v["trusted"] is False and v["fails"] == ["randomization"]
    assert "not trusted - fails randomization (FAILED: final SSIM 0.95 not below 0.40)" in v["line"]
    assert "passes localization, image_dependence" in v["line"]


@pytest.mark.parametrize(
    "loc, status",
    [
        (_loc(diff_low=-0.05, better=True), "fail"),  # the difference's CI includes 0
        (_loc(better=False), "fail"),
        (_loc(diff_low=0.01), "pass"),
        (None, "not measured"),  # no ground truth
    ],
)
def test_localisation_must_beat_the_random_control_with_a_ci_excluding_zero(loc, status):
    v = verdict(_entry(localization=loc))
    assert v["criteria"]["localization"]["status"] == status


def test_one_figure_not_beating_the_control_fails_localisation():
    loc = _loc()
    loc["versus_control"]["miou_otsu"] = {"difference": _ci(0.0, -0.1, 0.1), "better": False}
    v = verdict(_entry(localization=loc))
    assert v["criteria"]["localization"]["status"] == "fail"
    assert v["criteria"]["localization"]["why"].startswith("does not beat the random map")


def test_image_independent_maps_fail_and_are_said_in_words():
    v = verdict(_entry(image_agreement={"ssim": 0.97, "spearman": 0.8, "n_pairs": 50}), "hirescam at layer1")
    assert v["trusted"] is False and "image_dependence" in v["fails"]
    assert (
        "hirescam at layer1's maps hardly change from image to image"
        in v["criteria"]["image_dependence"]["why"]
    )


def test_no_ground_truth_randomisation_and_repeatability_only():
    entry = {
        "localization": None,
        "randomization": _sim(True),
        "repeatability": _sim(True),
        "image_agreement": {"ssim": 0.3, "spearman": 0.2, "n_pairs": 50},
    }
    v = verdict(entry)
    assert v["trusted"] is True and v["not_measured"] == ["localization", "reproducibility"]
    assert v["criteria"]["localization"]["why"] == "no ground truth on these items"


def test_a_randomisation_without_verdict_is_not_measured_and_nothing_measured_is_not_trusted():
    v = verdict({"randomization": _sim(None), "image_agreement": {"spearman": None}})
    assert v["trusted"] is False and v["passes"] == [] and v["fails"] == []
    assert len(v["not_measured"]) == 5 and "no verdict" in v["line"]


def test_recommend_the_trusted_pipeline_with_the_best_hit_rate():
    entries = {
        "gradcam": {
            "layer4": _entry(localization=_loc(hit=0.95), randomization=_sim(False)),  # best hit, untrusted
            "layer2": _entry(localization=_loc(hit=0.6)),
        },
        "hirescam": {
            "layer2": _entry(localization=_loc(hit=0.7)),
            "layer3": _entry(localization=_loc(hit=0.65)),
        },
    }
    out = recommend(entries, model="resnet18")
    assert out["pipeline"] == {"model": "resnet18", "method": "hirescam", "layer": "layer2", "hit_rate": 0.7}
    assert [(t["method"], t["layer"]) for t in out["trusted"]] == [
        ("hirescam", "layer2"),
        ("hirescam", "layer3"),
        ("gradcam", "layer2"),
    ]
    assert out["line"].startswith("Trust resnet18 + hirescam at layer2: the best hit rate (0.70) among the 3")
    assert JOINT_NOTE in out["line"] and out["note"] == JOINT_NOTE


def test_recommend_none_when_nothing_is_trusted_and_without_ground_truth():
    bad = {"gradcam": {"layer4": _entry(randomization=_sim(False))}}
    out = recommend(bad)
    assert out["pipeline"] is None and out["trusted"] == []
    assert out["line"].startswith("No pipeline passes every measured criterion")
    nogt = {"hirescam": {"layer1": _entry(localization=None, repeatability=_sim(True))}}
    out = recommend(nogt, model="quickstart")
    assert out["pipeline"] == {
        "model": "quickstart",
        "method": "hirescam",
        "layer": "layer1",
        "hit_rate": None,
    }
    assert "no ground truth, so no hit rate" in out["line"]


def test_recommend_uses_a_verdict_already_in_the_entry():
    entry = _entry()
    entry["verdict"] = verdict(entry) | {"trusted": False}  # e.g. the scorecard's own, stored beside
    assert recommend({"gradcam": {"layer2": entry}})["pipeline"] is None

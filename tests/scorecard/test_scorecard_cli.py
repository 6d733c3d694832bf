"""``chestxai scorecard RUN`` end to end on a tiny run: the terminal summary, DIR/report.html, and the
section ``chestxai report RUN`` adds once RUN/scorecard/scorecard.json exists."""

from __future__ import annotations

import shutil

from chestxai import cli


def test_scorecard_command_writes_json_report_and_report_section(boxed_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(boxed_run, run)
    argv = ["scorecard", str(run), "--methods", "gradcam", "--layers", "layer3", "--limit", "3",
            "--n-boot", "10", "--sanity-limit", "3", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "gradcam" in out and "layer3" in out and "hit_rate" in out
    assert "measures the model and the method together" in out
    card_html = (run / "scorecard" / "report.html").read_text()
    assert "Trust scorecard" in card_html and "measures the model and the method together" in card_html
    assert cli.main(argv) == 0  # its own files are replaced on a second run

    assert cli.main(["report", str(run), "--no-progress"]) == 0
    page = (run / "report.html").read_text()
    assert 'id="scorecard"' in page and "gradcam @ layer3" in page and "random-pairs SSIM" in page


def test_a_bad_flag_is_one_line(boxed_run, capsys):
    assert cli.main(["scorecard", str(boxed_run), "--split", "val", "--val-split", "val"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--val-split" in err[0]


def test_report_words_for_image_independent_and_unchanged_maps():
    from chestxai.report.scorecard import scorecard_body, warnings

    entry = {
        "localization": None,
        "image_agreement": {
            "ssim": 0.99,
            "image_independent": "edge at layer2's maps hardly change from image to image",
        },
        "randomization": {"pass": False, "final_ssim": 0.98, "baseline_ssim": 0.97, "verdict": None},
        "verdict": {"trusted": False, "line": "edge at layer2 fails randomisation"},
    }
    card = {"methods": {"edge": {"layer2": entry}}, "items": {}, "ground_truth": None}
    words = warnings(card)
    assert words[0].startswith("edge at layer2's maps hardly change")
    assert "unchanged by weight randomisation" in words[1] and "0.980" in words[1] and "0.970" in words[1]
    body = scorecard_body(card)
    assert "no ground-truth boxes or masks" in body and "not trusted" in body

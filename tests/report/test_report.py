"""``build_report``: one self-contained HTML file with every section the run supports."""

from __future__ import annotations

import re
import shutil

import pytest

from chestxai.cli import main
from chestxai.report import build_report
from chestxai.report.gallery import json_tables

IMG_SRC = re.compile(r'<img [^>]*src="([^"]*)"')


def test_report_is_self_contained_and_complete(evaluated_run):
    run, _ = evaluated_run
    path = build_report(run)
    assert path == run / "report.html"
    html = path.read_text()
    sources = IMG_SRC.findall(html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(href|src)="(https?:|//|file:)', html)  # nothing fetched from elsewhere
    for anchor in ("dataset", "config", "training", "metrics", "figures", "explanations", "localization"):
        assert f'id="{anchor}"' in html
    assert "not for clinical use" in html
    # every figure of the run is embedded (6 evaluation figures + training curves) + the overlays
    # (2 labels x 6 images, at most 8 per outcome)
    assert html.count('<div class="figures">') == 1
    n_gallery = len(re.findall(r'<div class="gallery">.*?</div>', html))
    assert 1 <= n_gallery <= 4 and 7 + 8 <= len(sources) <= 7 + 12
    assert "Atelectasis" not in html and "class0" in html  # tiny run labels
    assert "pointing_game_random" in html and "road_random" in html
    assert re.search(r"True positives|False positives|True negatives|False negatives", html)


def test_without_explanations_there_is_no_gallery(evaluated_run):
    _, plain = evaluated_run
    html = build_report(plain).read_text()
    assert 'id="explanations"' not in html and 'id="metrics"' in html


def test_unevaluated_run_gets_notes_not_errors(evaluated_run, tmp_path):
    _, plain = evaluated_run
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(plain / "checkpoint.pt", fresh / "checkpoint.pt")
    html = build_report(fresh).read_text()
    assert "Not evaluated yet" in html and "not for clinical use" in html


def test_not_a_run_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="neither checkpoint.pt nor metrics.json"):
        build_report(tmp_path)


def test_missing_overlay_is_skipped_not_embedded_broken(evaluated_run, tmp_path):
    run, _ = evaluated_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = len(IMG_SRC.findall(build_report(copy).read_text()))
    for png in (copy / "cams" / "gradcam").glob("*.png"):
        png.unlink()
    html = build_report(copy).read_text()
    assert len(IMG_SRC.findall(html)) == 7 < before


def test_json_tables_render_common_shapes():
    html = json_tables([{"method": "gradcam", "iou": 0.5}, {"method": "cam", "iou": 0.25}], "x")
    assert "<th>method</th>" in html and "0.25" in html
    html = json_tables({"gradcam": {"iou": 0.5}, "n": 3, "per_label": {"a": {"iou": 0.1}}}, "x")
    assert "gradcam" in html and "per_label" in html and "<td>3</td>" in html


def test_cli_report(evaluated_run, tmp_path, capsys):
    run, _ = evaluated_run
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert out.exists() and str(out) in capsys.readouterr().out


def test_gallery_outcomes_follow_thresholds(tmp_path):
    import pandas as pd

    from chestxai.report.gallery import outcomes
    from chestxai.rundir import RunDir

    pd.DataFrame(
        {
            "image_id": ["a", "b", "c", "d", "e"],
            "patient_id": ["1", "2", "3", "4", "5"],
            "split": ["test"] * 4 + ["val"],
            "p_x": [0.9, 0.8, 0.2, 0.1, 0.9],
            "y_x": [1, 0, 1, 0, 1],
        }
    ).to_csv(tmp_path / "predictions.csv", index=False)
    index = pd.DataFrame(
        {"image_id": ["a", "b", "c", "d", "zz"], "label": "x", "method": "gradcam", "overlay": "o.png"}
    )
    metrics = {"split": "test", "task": "binary", "thresholds": {"values": {"x": 0.5}}}
    got = outcomes(index, RunDir(tmp_path), metrics)
    assert list(got["outcome"]) == ["TP", "FP", "FN", "TN", ""]
    metrics["thresholds"]["values"]["x"] = 0.85  # a stricter threshold turns b into a true negative
    assert outcomes(index, RunDir(tmp_path), metrics)["outcome"][1] == "TN"


def test_out_never_replaces_a_file_report_did_not_write(evaluated_run, tmp_path, capsys):
    _, plain = evaluated_run
    copy = tmp_path / "copy"
    shutil.copytree(plain, copy)
    checkpoint = (copy / "checkpoint.pt").read_bytes()
    assert main(["report", str(copy), "--out", str(copy / "checkpoint.pt")]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt exists and was not written by this command" in err and "--force" in err
    assert (copy / "checkpoint.pt").read_bytes() == checkpoint  # the trained model survives
    notes = tmp_path / "notes.html"
    notes.write_text("<html>my own page</html>")
    assert main(["report", str(copy), "--out", str(notes)]) == 2
    assert notes.read_text() == "<html>my own page</html>"
    assert main(["report", str(copy), "--out", str(notes), "--force"]) == 0
    assert "chestxai report" in notes.read_text()
    assert main(["report", str(copy), "--out", str(notes)]) == 0  # its own report: replaced freely
    legacy = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>chestxai report: copy</title>'
    (copy / "report.html").write_text(legacy)  # written before reports carried the generator tag
    assert main(["report", str(copy)]) == 0 and "generator" in (copy / "report.html").read_text()
    (copy / "folder").mkdir()
    assert main(["report", str(copy), "--out", str(copy / "folder"), "--force"]) == 2  # never a directory
    assert "is a directory" in capsys.readouterr().err


def test_gallery_shows_only_the_evaluated_split(evaluated_run, tmp_path):
    from chestxai.explain.run import explain_run
    from chestxai.explain.settings import ExplainSettings

    run, _ = evaluated_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = len(IMG_SRC.findall(build_report(copy).read_text()))
    explain_run(
        copy, "gradcam", split="val", finding="class0", settings=ExplainSettings(faithfulness_limit=0)
    )
    assert (copy / "cams" / "gradcam@val" / "heatmaps.npy").is_file()
    assert (copy / "cams" / "gradcam" / "heatmaps.npy").is_file()  # the test split's maps are kept
    assert len(IMG_SRC.findall(build_report(copy).read_text())) == before


def test_localization_text_has_no_escaped_markup_and_shows_sanity_state(evaluated_run):
    run, _ = evaluated_run
    html = build_report(run).read_text()
    assert "&lt;code&gt;" not in html and "<code>_random</code>" in html
    assert "Localization against ground truth, per method and finding" in html
    assert "not run (--sanity)" in html  # the sanity column beside the localization figures
    assert "Heatmap mass on the image border" in html and "border_energy_random" in html


def test_no_ground_truth_says_so_and_sanity_results_are_shown(tmp_path):
    """A run without boxes/masks: the report says localization is not measured (no empty heading),
    and the --sanity verdict and its per-block table sit beside the other figures."""
    from chestxai.evaluation import evaluate_run
    from chestxai.explain.run import explain_run
    from chestxai.explain.settings import ExplainSettings
    from chestxai.testing import write_tiny_run

    run, _ = write_tiny_run(tmp_path / "b", "binary", n=24)
    evaluate_run(run, n_boot=20)
    settings = ExplainSettings(faithfulness_limit=2, steps=4, sanity_limit=2)
    explain_run(run, "gradcam", limit=4, settings=settings, sanity=True)
    html = build_report(run).read_text()
    assert "Localization against ground truth: none measured" in html
    assert "Localization against ground truth, per method" not in html
    assert "Sanity check: similarity of maps after re-initialising every block" in html
    assert re.search(r"gradcam: (passed|FAILED)", html) and "mean |Spearman|" in html
    assert "spearman_all_random" in html and "cascading" in html and "independent" in html
    assert "deletion_auc_beats_random" in html and "logit" in html


# ---- wide tables (issue 20 item 10d) ---------------------------------------------------------------
TABLE = re.compile(r"<table>(.*?)</table>", re.S)


def _headers(table_html: str) -> list[str]:
    return re.findall(r"<th>(.*?)</th>", table_html.split("</thead>")[0])


def test_a_wide_table_is_split_so_every_column_is_visible():
    from chestxai.report.html import MAX_COLUMNS, table

    header = ["method", "finding", *(f"m{i}" for i in range(14)), "road_beats_random"]
    rows = [["gradcam", "Mass", *range(14), "yes"], ["random", "Mass", *range(14), "no"]]
    parts = TABLE.findall(table(header, rows, "faithfulness", keys=2))
    assert len(parts) == 3
    shown = [_headers(p) for p in parts]
    assert all(len(h) <= MAX_COLUMNS and h[:2] == ["method", "finding"] for h in shown)
    assert [c for h in shown for c in h[2:]] == header[2:]  # every column once, in order
    assert "<td>yes</td>" in parts[-1] and "part 3 of 3" in parts[-1]
    narrow = table(["a", "b"], [[1, 2]], "x")
    assert len(TABLE.findall(narrow)) == 1 and "part" not in narrow


def test_every_report_table_fits_and_shows_accuracy_and_beats_random(evaluated_run):
    """8 columns of "0.812 [0.750, 0.861]" cells fit the page's 1200 px (report.html.MAX_COLUMNS)."""
    run, _ = evaluated_run
    html = build_report(run).read_text()
    tables = TABLE.findall(html)
    assert tables and max(len(_headers(t)) for t in tables) <= 8
    headers = {h for t in tables for h in _headers(t)}
    assert any(h.lower().startswith("accuracy") for h in headers), sorted(headers)
    assert {"deletion_auc_beats_random", "insertion_auc_beats_random"} <= headers, sorted(headers)

"""The run directory: one place names every artefact, with readers/writers and overwrite checks."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

import chestxai
from chestxai.locks import exclusive
from chestxai.rundir import RunDir, explain_key
from chestxai.rundir.guard import check_not_training, check_output_dir, check_overwrite, has_marker
from chestxai.rundir.tables import read_cam_index, read_splits, update_cam_index, write_splits
from chestxai.rundir.thresholds import operating_thresholds, write_thresholds

ARTEFACTS = {
    "config.yaml", "checkpoint.pt", "last.pt", "history.csv", "splits.csv", "predictions.csv",
    "metrics.json", "thresholds.json", "ensemble.json", "explain_metrics.json", "explain_compare.csv",
    "explain_compare.md", "report.html", "synth_metrics.json", "study.json", "best.yaml", "model.onnx", "bench.json",
    "uncertainty.json", "cost.json", "manifest.csv", "study.journal", "space.yaml", "experiment.json",
    "conformal.csv",
}  # fmt: skip


def test_no_other_module_spells_an_artefact_name():
    """A file name used as a value anywhere but chestxai.rundir is a second, drifting definition."""
    src = Path(chestxai.__file__).parent
    found = []
    for path in src.rglob("*.py"):
        if "rundir" in path.relative_to(src).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ARTEFACTS:
                found.append(f"{path.relative_to(src)}:{node.lineno} {node.value!r}")
    assert not found, f"use RunDir instead of spelling these names: {found}"


def test_every_split_gets_its_own_names(tmp_path):
    run = RunDir(tmp_path)
    assert run.metrics == run.metrics_for("test") == tmp_path / "metrics.json"
    assert run.predictions_for("val") == tmp_path / "predictions-val.csv"
    assert run.figures_for("external") == tmp_path / "figures-external"
    assert run.cam_method("gradcam++") == tmp_path / "cams" / "gradcam++"
    assert run.cam_method("gradcam", "val") == tmp_path / "cams" / "gradcam@val"
    assert explain_key("gradcam", "files") == "gradcam@files"
    assert run.uncertainty("mc dropout") == tmp_path / "uncertainty" / "mc_dropout"
    assert run.conformal.summary == tmp_path / "uncertainty" / "conformal" / "uncertainty.json"
    assert run.conformal.conformal_sets == tmp_path / "uncertainty" / "conformal" / "conformal.csv"
    assert run.onnx == tmp_path / "export" / "model.onnx"
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="cannot name a file"):
            run.metrics_for(bad)


def test_operating_thresholds_fall_back_to_the_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    assert operating_thresholds(run, ["a"]).values == {"a": 0.5}
    assert operating_thresholds(run, ["a"], {"a": 0.4}).source == "checkpoint"
    write_thresholds(
        run, {"a": 0.3}, policy="youden", chosen_on="val", epoch=5, checkpoint="c", evaluated_split="test"
    )
    got = operating_thresholds(run, ["a"], {"a": 0.4}, epoch=5)
    assert got.values == {"a": 0.3} and got.source == "thresholds.json" and got.policy == "youden"
    assert operating_thresholds(run, ["a"], {"a": 0.4}, epoch=6).values == {"a": 0.4}  # stale epoch
    assert operating_thresholds(run, ["b"], {"b": 0.4}, epoch=5).values == {"b": 0.4}  # other labels
    run.thresholds.write_text('{"policy": "youden"}')
    with pytest.raises(ValueError, match="no 'values'"):
        operating_thresholds(run, ["a"])


def test_splits_and_cam_index_round_trip(tmp_path):
    run = RunDir(tmp_path)
    assert read_splits(run) is None
    write_splits(run, pd.DataFrame({"image_id": ["007", "x"], "row": [0, 1], "split": ["test", "val"]}))
    back = read_splits(run)
    assert list(back["image_id"]) == ["007", "x"] and back["row"].dtype.kind == "i"  # ids stay text
    with pytest.raises(ValueError, match="lacks columns"):
        write_splits(run, pd.DataFrame({"image_id": ["a"], "split": ["test"]}))
    run.cams.mkdir()
    pd.DataFrame({"image_id": ["a"], "label": ["x"], "method": ["gradcam"], "overlay": ["o.png"]}).to_csv(
        run.cams_index, index=False
    )  # an index written before splits were recorded
    assert list(read_cam_index(run)["split"]) == [""]
    rows = pd.DataFrame({"image_id": ["b"], "label": ["x"], "method": ["gradcam"], "overlay": ["p.png"]})
    update_cam_index(run, rows, ["gradcam"], "val")
    update_cam_index(run, rows.assign(image_id="c"), ["gradcam"], "val")
    index = read_cam_index(run)
    assert list(index["image_id"]) == ["a", "c"] and list(index["split"]) == ["", "val"]


def test_overwrite_checks(tmp_path):
    mine, other = tmp_path / "mine.html", tmp_path / "other.bin"
    mine.write_text("<head>MARK</head>")
    other.write_bytes(b"weights")
    assert check_overwrite(tmp_path / "new.html", force=False) == tmp_path / "new.html"
    assert check_overwrite(mine, False, has_marker("MARK")) == mine
    with pytest.raises(FileExistsError, match="--force"):
        check_overwrite(other, False, has_marker("MARK"))
    assert check_overwrite(other, True) == other
    with pytest.raises(FileExistsError, match="is a directory"):
        check_overwrite(tmp_path, True)
    assert check_output_dir(tmp_path / "fresh", False) == tmp_path / "fresh"
    with pytest.raises(FileExistsError, match="not empty"):
        check_output_dir(tmp_path, False)
    with pytest.raises(FileExistsError, match="is a file"):
        check_output_dir(other, True)


def test_a_locked_run_is_refused_unless_forced(tmp_path):
    run = RunDir(tmp_path / "run")
    check_not_training(run, False, "evaluate it")  # no lock file at all
    with exclusive(run.root, "run directory"):
        with pytest.raises(FileExistsError, match="still training"):
            check_not_training(run, False, "evaluate it")
        check_not_training(run, True, "evaluate it")
    check_not_training(run, False, "evaluate it")  # released when training ends


def test_the_readme_says_predictions_csv_holds_val_rows_too():
    """Issue 20 item 10j: the README called predictions.csv "the test split" while it also holds the
    val rows (thresholds and ensemble weights are fitted on them): it now says so and names the column."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `predictions.csv`"))
    assert "val rows" in row and "`split`" in row

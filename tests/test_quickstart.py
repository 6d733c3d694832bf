"""The README's main job end to end on the real PneumoniaMNIST copy (one short epoch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.realdata
def test_quickstart_end_to_end(shared_data, tmp_path) -> None:
    npz = shared_data / "pneumoniamnist" / "pneumoniamnist.npz"
    if not npz.exists():
        pytest.skip(f"{npz} is absent")
    env = dict(os.environ, CHESTXAI_DOWNLOADS=str(npz.parent), CHESTXAI_CACHE=str(tmp_path / "cache"))
    run_dir = tmp_path / "runs" / "quickstart"
    cmd = [sys.executable, "-m", "chestxai", "quickstart", "--run-dir", str(run_dir), "--epochs", "1"]
    result = subprocess.run(
        [*cmd, "--explain-limit", "8", "--no-progress"], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PneumoniaMNIST test: ROC-AUC" in result.stdout
    for name in ("checkpoint.pt", "history.csv", "predictions.csv", "metrics.json", "report.html"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_images"] == 624  # the official test split
    assert metrics["metrics"]["macro"]["roc_auc"]["value"] > 0.8  # one epoch already separates the classes
    assert any((run_dir / "cams").iterdir())
    # explanations that mean something or say why not: a 7x7 map or finer, faithfulness on logits
    # beside the random control, border energy, the sanity verdict, and the warnings list
    explained = json.loads((run_dir / "explain_metrics.json").read_text())["methods"]
    for name in ("hirescam", "gradcam"):  # the gallery's method and Grad-CAM measured beside it
        entry = explained[name]
        assert min(entry["grid"]) >= 7 and entry["faithfulness"]["score"] == "logit"
        assert (
            entry["faithfulness"]["n"] == 8 and entry["control"]["faithfulness"]["deletion_auc"] is not None
        )
        assert entry["anatomy"]["border_px"] == 2 and entry["sanity"]["n_images"] == 8
        assert isinstance(entry["warnings"], list)
    index = (run_dir / "cams" / "index.csv").read_text()
    assert "hirescam" in index and "gradcam" not in index  # overlays of the shown method only
    assert (
        "vs random" in result.stdout and "border energy" in result.stdout and "sanity check" in result.stdout
    )
    html = (run_dir / "report.html").read_text()
    assert "Sanity check: similarity of maps" in html and "Heatmap mass on the image border" in html
    # a second quickstart never overwrites the first
    again = subprocess.run(
        [*cmd, "--explain-limit", "0", "--no-progress"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "runs" / "quickstart-2" / "report.html").is_file()

"""Report fixtures: an evaluated tiny run, with and without explanation outputs."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


def _tiny_runs():
    """``tests/evaluation/tiny_runs.py``, loaded by path (test folders are not packages)."""
    if "tiny_runs" in sys.modules:
        return sys.modules["tiny_runs"]
    path = Path(__file__).resolve().parents[1] / "evaluation" / "tiny_runs.py"
    spec = importlib.util.spec_from_file_location("tiny_runs", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tiny_runs"] = mod
    spec.loader.exec_module(mod)
    return mod


def add_explanations(run: Path, n_images: int = 6) -> None:
    """What the explanation stage writes: cams/index.csv + overlay PNGs, explain_metrics.json."""
    cams = run / "cams"
    (cams / "gradcam").mkdir(parents=True, exist_ok=True)
    preds = pd.read_csv(run / "predictions.csv", dtype={"image_id": str})
    labels = [c[2:] for c in preds.columns if c.startswith("p_")]
    rng = np.random.default_rng(0)
    rows = []
    for image_id in preds.loc[preds["split"] == "test", "image_id"][:n_images]:
        for label in labels[:2]:
            rel = f"gradcam/{image_id}_{label}.png"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(cams / rel)
            rows.append({"image_id": image_id, "label": label, "method": "gradcam", "overlay": rel})
    pd.DataFrame(rows).to_csv(cams / "index.csv", index=False)
    metrics = {
        "methods": {"gradcam": {"iou_mean": 0.31, "iobb_mean": 0.42, "pointing_game": 0.6}},
        "n_boxes": 12,
    }
    (run / "explain_metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    """(run with explanations, same run without) after ``evaluate_run`` (multi-label, 3 findings)."""
    from chestxai.evaluation import evaluate_run

    root = tmp_path_factory.mktemp("report")
    run, _ = _tiny_runs().write_tiny_run(root / "a", "multilabel", 3, n=48)
    evaluate_run(run, n_boot=50)
    plain = root / "plain"
    shutil.copytree(run, plain)
    add_explanations(run)
    return run, plain

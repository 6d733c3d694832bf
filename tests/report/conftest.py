"""Report fixtures: an evaluated tiny run, with and without explanation outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from chestxai.testing import write_tiny_run


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
            rel = f"cams/gradcam/{image_id}_{label}.png"  # relative to the run, as `chestxai explain` writes
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(run / rel)
            rows.append({"image_id": image_id, "label": label, "method": "gradcam", "overlay": rel})
    pd.DataFrame(rows).to_csv(cams / "index.csv", index=False)
    metrics = {  # the shape chestxai.explain writes (one flat row per method and finding)
        "format": 1,
        "localization_table": [
            {
                "method": "gradcam",
                "finding": "(all)",
                "n": 12,
                "pointing_game": 0.6,
                "pointing_game_random": 0.2,
            }
        ],
        "faithfulness_table": [{"method": "gradcam", "n": 12, "road": 0.17, "road_random": 0.003}],
        "skipped": [],
    }
    (run / "explain_metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    """(run with explanations, same run without) after ``evaluate_run`` (multi-label, 3 findings)."""
    from chestxai.evaluation import evaluate_run

    root = tmp_path_factory.mktemp("report")
    run, _ = write_tiny_run(root / "a", "multilabel", 3, n=48)
    evaluate_run(run, n_boot=50)
    plain = root / "plain"
    shutil.copytree(run, plain)
    add_explanations(run)
    return run, plain

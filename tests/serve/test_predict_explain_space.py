"""`chestxai predict --explain` (issue 20 items 4-5): the top positive finding is explained by
default, boxes are in the original image's pixels (named in a ``box_space`` column; the model grid
with ``--box-space model``), the overlay is written at the original's size and the raw heatmap
array beside it."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pandas as pd
from serve_helpers import write_png

from chestxai.cli import main

ROWS, COLS = 300, 240  # not square, neither the cache size (48) nor the input size (32)


def images(root, n: int = 3) -> list:
    rng = np.random.default_rng(0)
    return [
        write_png(root / f"x{i}.png", rng.integers(0, 255, (ROWS, COLS), dtype=np.uint8)) for i in range(n)
    ]


def test_predict_explain_boxes_overlay_and_heatmap_in_the_original_pixels(run_dir, tmp_path):
    files = images(tmp_path / "imgs")
    out = tmp_path / "o.csv"
    argv = ["predict", str(run_dir), "--images", *map(str, files), "--out", str(out), "--no-progress",
            "--explain", "gradcam", "--label", "Mass"]  # fmt: skip
    assert main(argv) == 0
    frame = pd.read_csv(out)
    assert list(frame["box_space"]) == ["original"] * 3
    assert list(frame["image_width"]) == [COLS] * 3 and list(frame["image_height"]) == [ROWS] * 3
    assert any(json.loads(b) for b in frame["boxes"]), "gradcam of a random image has a hot region"
    for _, row in frame.iterrows():
        for x, y, w, h in json.loads(row["boxes"]):
            assert x >= 0 and y >= 0 and x + w <= COLS and y + h <= ROWS
        overlay = cv2.imread(row["overlay"])
        assert overlay.shape[:2] == (ROWS, COLS)  # the original's size, not the model's 48 or 32
        heat = np.load(row["heatmap_npy"])
        assert heat.shape == (32, 32) and heat.dtype == np.float32 and 0 <= heat.min() <= heat.max() <= 1

    model_out = tmp_path / "m.csv"
    argv = ["predict", str(run_dir), "--images", *map(str, files), "--out", str(model_out), "--no-progress",
            "--explain", "gradcam", "--label", "Mass", "--box-space", "model"]  # fmt: skip
    assert main(argv) == 0
    model = pd.read_csv(model_out)
    assert list(model["box_space"]) == ["model"] * 3
    for boxes in model["boxes"]:
        for x, y, w, h in json.loads(boxes):
            assert x + w <= 32 and y + h <= 32


def test_predict_explains_the_top_positive_finding_by_default(run_dir, tmp_path):
    from chestxai.serve.inputs import load_files
    from chestxai.serve.models import load_served
    from chestxai.serve.predict_files import PredictOptions, predict_files

    files = images(tmp_path / "imgs", 1)
    served = load_served(run_dir)
    probs = served.forward(load_files(files, served.resize_to).images)[0]
    names = served.label_names
    top, low = names[int(np.argmax(probs))], names[int(np.argmin(probs))]
    # every finding just under its threshold except the lowest-scoring one, which is positive
    values = {n: min(1.0, float(p) + 1e-3) for n, p in zip(names, probs, strict=True)}
    values[low] = 0.0
    served.thresholds = dataclasses.replace(served.thresholds, values=values)
    predict_files(served, files, tmp_path / "a.csv", PredictOptions(explain="gradcam", progress=False))
    row = pd.read_csv(tmp_path / "a.csv").iloc[0]
    assert row["explained_label"] == low != top, f"explained {row['explained_label']}, decided negative"
    assert row["explained_positive"] == 1 and row["explained_by"] == "top positive finding"
    # nothing positive: the top finding, marked negative
    served.thresholds = dataclasses.replace(served.thresholds, values=dict.fromkeys(names, 1.0))
    predict_files(served, files, tmp_path / "b.csv", PredictOptions(explain="gradcam", progress=False))
    row = pd.read_csv(tmp_path / "b.csv").iloc[0]
    assert row["explained_label"] == top and row["explained_positive"] == 0
    assert row["explained_by"] == "top score, no positive finding"

"""``evaluate`` + ``report`` on real multi-label data: the NIH ChestX-ray14 box subset.

An untrained network (these tests check the pipeline on real labels, patients and class
imbalance, not accuracy): 14 findings, several images per patient, rare findings missing from
a split. Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from chestxai.data.cache import PreparedCache
from chestxai.data.prepare import prepare
from chestxai.data.splits import splits_from_cache
from chestxai.evaluation import evaluate_run
from chestxai.metrics import MetricWarning
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, read_checkpoint, save_atomic
from chestxai.report import build_report
from chestxai.rundir import RunDir
from chestxai.rundir.tables import write_splits

SIZE = 64


@pytest.mark.realdata
@pytest.mark.slow
def test_evaluate_and_report_on_nih_boxes(shared_data, tmp_path):
    root = shared_data / "nih-bbox"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    cache = PreparedCache(prepare("nih", root, size=SIZE, out=tmp_path / "cache", workers=2, progress=False))
    assert cache.task == "multilabel" and len(cache.label_names) == 14
    parts = splits_from_cache(cache, val=0.25, test=0.35, seed=0)
    run = tmp_path / "run"
    run.mkdir()
    ids = cache.frame["image_id"].to_numpy(str)
    table = pd.concat([pd.DataFrame({"image_id": ids[r], "row": r, "split": s}) for s, r in parts.items()])
    write_splits(RunDir(run), table.sort_values("row"))
    model = create_model("resnet18", num_labels=14, task="multilabel", input_size=SIZE)
    preprocess = {"size": SIZE, "mean": 0.5, "std": 0.25}
    config = {"data": {"cache_dir": str(cache.path)}}
    save_atomic(make_checkpoint(model, cache.label_names, preprocess, config), run / "checkpoint.pt")

    with pytest.warns(MetricWarning):  # e.g. Hernia has no positive among these test images
        result = evaluate_run(run, n_boot=200, batch_size=64)

    assert result["n_images"] == len(parts["test"])
    assert result["bootstrap"]["unit"] == "patient" and result["n_patients"] < result["n_images"]
    stored = json.loads((run / "thresholds.json").read_text())
    assert stored["values"] == pytest.approx(result["thresholds"]["values"])
    assert set(read_checkpoint(run / "checkpoint.pt")["thresholds"].values()) == {0.5}  # never rewritten
    metrics = json.loads((run / "metrics.json").read_text())
    preds = pd.read_csv(run / "predictions.csv")
    test = preds[preds["split"] == "test"]
    for name in cache.label_names:
        y, p = test[f"y_{name}"].to_numpy(), test[f"p_{name}"].to_numpy()
        stored = metrics["metrics"]["per_class"][name]["roc_auc"]["value"]
        if 0 < y.sum() < len(y):
            assert stored == pytest.approx(roc_auc_score(y, p))
        else:
            assert stored is None
    assert np.isfinite(metrics["metrics"]["macro"]["roc_auc"]["value"])

    html = build_report(run).read_text()
    assert "Atelectasis" in html and "not for clinical use" in html

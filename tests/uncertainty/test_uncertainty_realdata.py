"""The stage on real PneumoniaMNIST pixels (300 images of the shared copy; an untrained
dropout model, so only the plumbing and the baselines' ordering are checked, not accuracy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, save_atomic
from chestxai.paths import shared_data_root
from chestxai.rundir import RunDir
from chestxai.rundir.tables import write_splits
from chestxai.testing import write_tiny_cache
from chestxai.uncertainty.stage import uncertainty_run

NPZ = shared_data_root() / "pneumoniamnist" / "pneumoniamnist.npz"


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not NPZ.is_file(), reason=f"real data absent: {NPZ} (set CHESTXAI_DATA)")
def test_mc_dropout_and_tta_on_real_images(tmp_path):
    data = np.load(NPZ)
    images = np.concatenate([data["val_images"][:100], data["test_images"][:200]])
    labels = np.concatenate([data["val_labels"][:100], data["test_labels"][:200]]).astype(np.float32)
    split = ["val"] * 100 + ["test"] * 200
    cache = write_tiny_cache(tmp_path / "cache", images, labels, ["Pneumonia"], "binary", split=split)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    torch.manual_seed(0)
    model = create_model("resnet18", 1, "binary", dropout=0.3, input_size=28)
    ckpt = make_checkpoint(model, ["Pneumonia"], {"size": 28, "mean": 0.5, "std": 0.25},
                           config={"data": {"cache_dir": str(cache)}}, epoch=1)  # fmt: skip
    save_atomic(ckpt, run.checkpoint)
    ids = [f"img{i:05d}" for i in range(300)]
    write_splits(run, pd.DataFrame({"image_id": ids, "row": range(300), "split": split}))
    for method in ("mc-dropout", "tta"):
        s = uncertainty_run(run.root, method=method, passes=10, n_boot=100, n_gallery=2)
        assert s["n_images"] == 200
        oracle, rnd = s["referral"]["oracle"], s["referral"]["random"]
        assert all(o["accuracy"] >= r["accuracy"] for o, r in zip(oracle, rnd, strict=True))
        assert s["aurc"]["oracle"] <= s["aurc"]["random"]
        assert np.isfinite(s["calibration"]["mean"]["ece"])

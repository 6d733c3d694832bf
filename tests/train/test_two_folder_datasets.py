"""Issue 9 #11: a two-folder dataset trains with defaults, end to end through the CLI.

``NORMAL/`` + ``PNEUMONIA/`` (Kermany's layout) reads as a binary task; two folders without a
normal-like one (``COVID/`` + ``Viral Pneumonia/``) stay a two-class multi-class task. Before the
fix, validation died after epoch 1 with "y should be a 1d array, got (8, 2)" for the latter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chestxai.cli import main
from chestxai.models.checkpoint import read_checkpoint


def two_folders(root: Path, names: tuple[str, str], per_class: int = 24) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (24, 24), dtype=np.uint8)
            img[6:18, 6:18] += np.uint8(120 * k)  # a bright square marks the second class
            Image.fromarray(img).save(root / name / f"p{k}{i:02d}.png")
    return root


@pytest.mark.parametrize(
    "names,task",
    [(("NORMAL", "PNEUMONIA"), "binary"), (("COVID", "Viral Pneumonia"), "multiclass")],
)
def test_two_folders_train_evaluate_with_defaults(tmp_path, names, task):
    root = two_folders(tmp_path / "data", names)
    run = tmp_path / "run"
    common = ["--no-progress"]
    argv = ["train", "--source", "folder", "--root", str(root), "--size", "16", "--run-dir", str(run)]
    argv += ["--cache", str(tmp_path / "cache"), "--epochs", "2", "--batch-size", "8", *common]
    assert main(argv + ["--set", "train.threads=1"]) == 0
    ckpt = read_checkpoint(run / "checkpoint.pt")
    assert ckpt["model"]["task"] == task
    assert main(["evaluate", str(run), "--n-boot", "20", "--no-figures", *common]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["metrics"]["macro"]["roc_auc"]["value"] is not None

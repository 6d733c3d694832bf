"""Report fixtures: an evaluated tiny run, with and without explanation outputs (all written by
the real stages: ``evaluate_run`` and ``explain_run``)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from chestxai.explain.settings import ExplainSettings
from chestxai.testing import SPLIT_CYCLE, write_tiny_run


def box_table(n: int, labels: list[str], n_images: int = 6) -> pd.DataFrame:
    """A box per label on the first ``n_images`` test images (so every one is explained)."""
    test = [i for i in range(n) if SPLIT_CYCLE[i % len(SPLIT_CYCLE)] == "test"][:n_images]
    return pd.DataFrame(
        [
            {"image_id": f"img{i:05d}", "label": lab, "x": 4, "y": 6, "w": 10, "h": 8}
            for i in test
            for lab in labels
        ]
    )


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    """(run with explanations, same run without) after ``evaluate_run`` (multi-label, 3 findings)."""
    from chestxai.evaluation import evaluate_run
    from chestxai.explain.run import explain_run

    root = tmp_path_factory.mktemp("report")
    run, _ = write_tiny_run(root / "a", "multilabel", 3, n=48, boxes=box_table(48, ["class0", "class1"]))
    evaluate_run(run, n_boot=50)
    plain = root / "plain"
    shutil.copytree(run, plain)
    explain_run(run, "gradcam", settings=ExplainSettings(faithfulness_limit=2, steps=4))
    return run, plain

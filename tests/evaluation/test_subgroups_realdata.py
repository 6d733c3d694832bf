"""Acceptance, as a new user would try it: NIH images the run never saw (``nih-bbox/extra``, with
their official ``Data_Entry_2017.csv``), prepared by ``chestxai prepare`` and scored with
``chestxai evaluate RUN --by sex,view``: ``metrics.json`` gets ``subgroups`` with per-group AUROC
and intervals. The run is a tiny untrained 14-finding network (the test checks the pipeline on
real demographics, not accuracy). Skipped when ../shared/data is absent."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from chestxai.cli import main
from chestxai.data.cache import PreparedCache
from chestxai.labels import NIH14
from chestxai.rundir import RunDir, prob_column, target_column
from chestxai.testing import write_tiny_run


@pytest.mark.realdata
@pytest.mark.slow
def test_evaluate_by_sex_view_on_unseen_nih_images(shared_data, tmp_path, capsys):
    root = shared_data / "nih-bbox" / "extra"
    if not (root / "Data_Entry_2017.csv").is_file():
        pytest.skip(f"{root} with its Data_Entry_2017.csv is absent")
    run, _ = write_tiny_run(tmp_path / "tiny", "multilabel", 14, n=16, size=32, label_names=list(NIH14))
    assert main(["prepare", "--source", "nih", "--root", str(root), "--size", "32", "--out", str(tmp_path / "c"),
                 "--no-progress"]) == 0  # fmt: skip
    (cache,) = (p for p in (tmp_path / "c").glob("nih-32px-*") if p.is_dir())
    out = tmp_path / "out"
    code = main(
        ["evaluate", str(run), "--data", str(cache), "--out", str(out), "--by", "sex,view", "--min-positives", "2",
         "--n-boot", "200", "--no-figures", "--no-progress", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0 and "subgroups" in capsys.readouterr().out
    s = json.loads(RunDir(out).metrics.read_text())["subgroups"]
    official = pd.read_csv(root / "Data_Entry_2017.csv")
    sexes = official["Patient Gender"].value_counts().to_dict()
    assert {g: v["n_images"] for g, v in s["attributes"]["sex"]["groups"].items()} == sexes
    assert set(s["attributes"]["view"]["groups"]) == set(official["View Position"])
    # Pneumonia: 5 positives in 20 images, both sexes with >= 2 positives and negatives -> scored
    pred = pd.read_csv(RunDir(out).predictions, dtype={"image_id": str}).merge(
        PreparedCache(cache).frame, on="image_id"
    )
    for g, e in s["attributes"]["sex"]["findings"]["Pneumonia"]["groups"].items():
        assert e["status"] == "scored"
        rows = pred["sex"] == g
        y, p = pred.loc[rows, target_column("Pneumonia")], pred.loc[rows, prob_column("Pneumonia")]
        assert e["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, p))
        lo, hi = e["roc_auc"]["ci"]
        assert lo <= e["roc_auc"]["value"] <= hi
    effusion = s["attributes"]["sex"]["findings"]["Effusion"]["groups"]["F"]  # 1 positive: shown as too few
    assert effusion["status"] == "too_few" and effusion["roc_auc"] is None

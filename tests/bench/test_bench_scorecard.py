"""``bench lesions --scorecard``: the extra seed and architecture are trained on the same task and the
benchmark run's trust scorecard is written beside bench.json."""

from __future__ import annotations

import json

import pytest

from chestxai.bench.lesions import LesionSettings
from chestxai.bench.run import BenchConfig, run_bench
from chestxai.bench.task import TaskSpec
from chestxai.rundir import BenchDir

for _name in ("localisation", "trust", "verdict"):
    pytest.importorskip(
        f"chestxai.scorecard.{_name}", reason="the scorecard's protocol modules are not merged yet"
    )


@pytest.mark.slow
def test_bench_scorecard_scores_the_run_with_its_seeds_and_another_architecture(
    background_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv("CHESTXAI_CACHE", str(tmp_path / "ucache"))
    task = TaskSpec(
        size=48, lesion=LesionSettings(radius=(0.14, 0.18), contrast=(0.6, 0.8)), variants=4, seed=0
    )
    cfg = BenchConfig(source="folder", root=str(background_folder), out=str(tmp_path / "bench"), size=48,
                      task=task, backgrounds=48, methods=("gradcam",), layers=("layer2", "layer4"), epochs=2,
                      batch_size=16, faithfulness=0, sanity=3, explain_limit=6, threads=1, progress=False,
                      scorecard=True, scorecard_seeds=1, scorecard_model="resnet34")  # fmt: skip
    out = run_bench(cfg)
    bench = BenchDir(tmp_path / "bench")
    assert out["scorecard"]["seeds"] == [str(bench.seed_run(1).root)]
    assert out["scorecard"]["architectures"] == [str(bench.model_run("resnet34").root)]
    card = json.loads(bench.scorecard.json.read_text())
    assert card["ground_truth"].startswith("cache") and card["items"]["n_positive"] >= 1
    for layer in ("layer2", "layer4"):
        entry = card["methods"]["gradcam"][layer]
        assert entry["localization"]["hit_rate"]["value"] is not None
        assert entry["repeatability"]["ssim"] is not None and entry["reproducibility"]["ssim"] is not None
    assert json.loads(bench.bench_json.read_text())["scorecard"]["path"] == str(bench.scorecard.json)

"""``bench lesions --scorecard``: the extra runs, their checks before any work, and the scorecard they feed."""

from __future__ import annotations

import json

import pytest

from chestxai.bench.lesions import LesionSettings
from chestxai.bench.run import BenchConfig
from chestxai.bench.scorecard import (
    best_hit_rate_by_layer,
    check_same_recipe,
    extra_runs,
    recommended_line,
    summarise,
)
from chestxai.bench.task import TaskSpec
from chestxai.cli import main
from chestxai.errors import UserError
from chestxai.rundir import BenchDir

EASY = LesionSettings(radius=(0.14, 0.18), contrast=(0.6, 0.8))


def _cfg(root, out, size=48, **kw) -> BenchConfig:
    task = TaskSpec(size=size, lesion=EASY, variants=4, seed=0)
    base = dict(source="folder", root=str(root), out=str(out), size=size, task=task, backgrounds=48,
                methods=("gradcam", "hirescam"), layers=("layer2", "layer4"), epochs=4, batch_size=16, lr=3e-3,
                faithfulness=0, sanity=0, threads=1, amp=False, progress=False, scorecard=True)  # fmt: skip
    return BenchConfig(**(base | kw))


def test_extra_runs_are_named_by_seed_and_architecture(tmp_path):
    cfg = _cfg(tmp_path, tmp_path / "b", seed=5, scorecard_seeds=2, scorecard_architecture="resnet34")
    runs = extra_runs(cfg, BenchDir(tmp_path / "b"))
    assert [(r["role"], r["model"], r["seed"], r["run_dir"].name) for r in runs] == [
        ("seed", "resnet18", 6, "run-seed6"),
        ("seed", "resnet18", 7, "run-seed7"),
        ("architecture", "resnet34", 5, "run-resnet34"),
    ]
    # off: nothing extra, whatever the counts say
    assert extra_runs(_cfg(tmp_path, tmp_path / "b", scorecard=False), BenchDir(tmp_path / "b")) == []
    assert extra_runs(_cfg(tmp_path, tmp_path / "b", scorecard_seeds=0, scorecard_architecture=""),
                      BenchDir(tmp_path / "b")) == []  # fmt: skip


def test_the_architecture_must_differ_from_the_model(tmp_path):
    with pytest.raises(UserError, match="reproducibility compares another architecture"):
        _cfg(tmp_path, tmp_path / "b", scorecard_architecture="resnet18")
    with pytest.raises(UserError, match="--scorecard-seeds must be >= 0"):
        _cfg(tmp_path, tmp_path / "b", scorecard_seeds=-1)


def test_best_hit_rate_per_layer_and_summary(tmp_path):
    """Hand-made scorecard entries: the best point estimate per layer, missing localisation skipped."""

    def entry(value):
        return {"localization": {"hit_rate": {"value": value, "ci_low": 0.0, "ci_high": 1.0}}}

    card = {
        "methods": {
            "gradcam": {"layer2": entry(0.40), "layer4": entry(0.10)},
            "hirescam": {"layer2": entry(0.85), "layer4": entry(0.05)},
            "eigencam": {"layer2": {"localization": None}, "layer4": entry(0.12)},
        },
        "recommended": {
            "method": "hirescam",
            "layer": "layer2",
            "line": "trust resnet18 + hirescam @ layer2",
        },
    }
    assert best_hit_rate_by_layer(card) == {
        "layer2": {"method": "hirescam", "hit_rate": 0.85},
        "layer4": {"method": "eigencam", "hit_rate": 0.12},
    }
    bench = BenchDir(tmp_path / "b")
    s = summarise(card, bench, [{"role": "seed", "model": "resnet18", "seed": 1, "run_dir": bench.seed_run(1).root}],
                  12.0, 3.0)  # fmt: skip
    assert s["json"].endswith("scorecard/scorecard.json") and s["runs"][0]["run_dir"].endswith("run-seed1")
    assert s["seconds"] == {"train": 12.0, "scorecard": 3.0} and s["recommended"] == card["recommended"]
    json.dumps(s)  # bench.json-ready
    assert recommended_line(card["recommended"]) == "trust resnet18 + hirescam @ layer2"
    assert recommended_line({"method": "layercam", "layer": "layer3"}) == "layercam at layer3"
    assert recommended_line(None) == "no pipeline recommended"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scorecard-architecture", "resnet99"], "--scorecard-architecture: "),
        (["--scorecard-architecture", "densenet121"], "densenet121 has no layer 'layer2'"),
        (["--scorecard-architecture", "resnet18"], "is --model itself"),
        (["--scorecard-seeds", "-2"], "--scorecard-seeds"),
        (["--scorecard-limit", "-1"], "--scorecard-limit"),
    ],
)
def test_scorecard_input_fails_in_one_line_before_any_work(
    background_folder, tmp_path, capsys, flags, message
):
    out = tmp_path / "never"
    rc = main(["bench", "lesions", "--source", "folder", "--root", str(background_folder), "--out", str(out),
               "--cache", str(tmp_path / "c"), "--size", "48", "--scorecard", *flags])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / "c").exists()  # nothing decoded, nothing trained


@pytest.mark.slow
def test_scorecard_of_a_tiny_benchmark_has_repeatability_and_reproducibility(
    background_folder, tmp_path, monkeypatch, capsys
):
    """One extra seed and a second architecture on the same task cache, through the command: the
    scorecard of the benchmark run compares both, its report is written and bench.json says where."""
    monkeypatch.setenv("CHESTXAI_CACHE", str(tmp_path / "ucache"))
    out = tmp_path / "b"
    rc = main(["bench", "lesions", "--source", "folder", "--root", str(background_folder), "--out", str(out),
               "--size", "48", "--backgrounds", "48", "--variants", "4", "--radius", "0.14,0.18",
               "--contrast", "0.6,0.8", "--methods", "gradcam", "hirescam", "--layers", "layer2", "layer4",
               "--epochs", "3", "--faithfulness-limit", "0", "--sanity-limit", "2", "--scorecard-limit", "24",
               "--threads", "1", "--scorecard", "--scorecard-seeds", "1", "--no-progress"])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0 and "scorecard:" in printed and "best hit rate per layer" in printed
    bench = BenchDir(out)
    for name in ("run-seed1", "run-resnet34"):
        assert (bench.root / name / "checkpoint.pt").exists(), name
    assert bench.scorecard.report.exists()
    card = json.loads(bench.scorecard.json.read_text())
    entry = card["methods"]["hirescam"]["layer2"]
    for block in ("repeatability", "reproducibility"):
        assert {"ssim", "baseline_ssim", "pass"} <= set(entry[block]), block
    assert {"hit_rate", "miou_otsu", "miou_tuned", "auprc"} <= set(entry["localization"])
    written = json.loads(bench.bench_json.read_text())["scorecard"]
    assert [(r["model"], r["seed"]) for r in written["runs"]] == [("resnet18", 1), ("resnet34", 0)]
    assert set(written["best_hit_rate_by_layer"]) == {"layer2", "layer4"}
    assert written["recommended"] == card["recommended"]


def test_an_extra_run_is_reused_only_with_the_same_recipe(tmp_path):
    """``train --resume`` does not compare recipes: a rerun with other flags into the same --out must
    not continue (or reuse) a run trained otherwise."""
    from chestxai.config import DataConfig, ModelConfig, RunConfig, TrainConfig, save_config

    def config(**train):
        return RunConfig(name="bench", run_dir=str(tmp_path / "run-seed1"),
                         data=DataConfig(source="bench-folder", cache_dir=str(tmp_path / "task"), size=48),
                         model=ModelConfig(name="resnet18"),
                         train=TrainConfig(**({"epochs": 6, "seed": 1, "warmup_epochs": 0.0} | train)))  # fmt: skip

    check_same_recipe(config())  # nothing there yet: train from scratch
    (tmp_path / "run-seed1").mkdir()
    save_config(config(), tmp_path / "run-seed1" / "config.yaml")
    check_same_recipe(config())  # the same recipe: resumed or reused
    with pytest.raises(UserError, match="train.epochs 6, this run asks for 4"):
        check_same_recipe(config(epochs=4))
    with pytest.raises(UserError, match="train.seed"):
        check_same_recipe(config(seed=2))

"""``compare``: side-by-side table with CIs, size/speed and DeLong p-values vs the first run."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_runs import write_tiny_run

from chestxai.cli import main
from chestxai.evaluation import compare_runs, cost, evaluate_run
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, read_checkpoint, save_atomic


def retrain_like(src, dst, seed: int, name: str = "resnet18"):
    """A second run on the same cache: the run dir copied, another (untrained) model in it."""
    shutil.copytree(src, dst)
    ckpt = read_checkpoint(dst / "checkpoint.pt")
    torch.manual_seed(seed)
    model = create_model(name, num_labels=len(ckpt["label_names"]), task=ckpt["model"]["task"], input_size=32)
    save_atomic(
        make_checkpoint(model, ckpt["label_names"], ckpt["preprocess"], ckpt["config"]), dst / "checkpoint.pt"
    )
    (dst / "history.csv").unlink()
    return dst


@pytest.fixture(autouse=True)
def quick_speed(monkeypatch):
    """Speed: the real predict path called once, fixed numbers back (timing itself: test_cost.py)."""

    def once(predict, size, device, settings=None):
        predict(np.zeros((1, size, size), np.uint8), batch_size=1, device=device)
        return {str(b): {"images_per_s": 10.0 * b, "latency_ms": 100.0, "repeats": 1} for b in (1, 32)}

    monkeypatch.setattr(cost, "measure_speed", once)


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    a, _ = write_tiny_run(root / "a", "multilabel", 3, n=64, patient_id=[f"p{i // 2}" for i in range(64)])
    b = retrain_like(a, root / "b", seed=1, name="mobilenetv2")
    same = root / "same"
    shutil.copytree(a, same)
    for run in (a, b, same):
        evaluate_run(run, n_boot=100, figures=False)
    return a, b, same


def test_table_holds_metrics_size_speed_and_significance(three_runs, tmp_path):
    a, b, same = three_runs
    result = compare_runs([a, b, same], out=tmp_path / "cmp", n_boot=300)
    s = result.summary
    assert list(s["run"]) == ["run", "b", "same"]
    assert list(s["model"]) == ["resnet18", "mobilenetv2", "resnet18"]
    assert s.loc[0, "params"] > s.loc[1, "params"] > 0  # resnet18 is larger than mobilenetv2
    assert s.loc[0, "train_time_s"] == pytest.approx(4.5)  # sum of epoch_time_s in history.csv
    assert s.loc[0, "train_images_per_s"] == pytest.approx(105.0)
    assert np.isnan(s.loc[1, "train_time_s"])  # no history.csv
    for column in cost.COST_COLUMNS:  # the cost side, per run
        assert column in s.columns
    assert s.loc[0, "checkpoint_mb"] == pytest.approx((a / "checkpoint.pt").stat().st_size / 2**20)
    assert list(s["infer_images_per_s_b32"]) == [320.0] * 3 and list(s["infer_latency_ms_b1"]) == [100.0] * 3
    assert s["speed_machine"].str.startswith("cpu: ").all()
    assert (s["roc_auc_ci_low"] <= s["roc_auc"]).all() and (s["roc_auc"] <= s["roc_auc_ci_high"]).all()
    assert np.isnan(s.loc[0, "p_bootstrap_macro_auc"])  # the reference has no p-value
    assert 0 <= s.loc[1, "p_bootstrap_macro_auc"] <= 1
    assert s.loc[2, "p_bootstrap_macro_auc"] == 1.0 and s.loc[2, "delta_macro_auc"] == 0.0
    pc = result.per_class
    assert len(pc) == 9 and set(pc["label"]) == {"class0", "class1", "class2"}
    assert (pc[pc["run"] == "same"]["p_delong_vs_first"] == 1.0).all()  # identical predictions
    # issue 20 item 8: 3 per-class tests per run, so Holm-adjusted p-values beside the raw ones
    assert "p_delong_holm_vs_first" in pc.columns
    from chestxai.metrics.significance import holm_adjust

    b_rows = pc[pc["run"] == "b"]
    assert b_rows["p_delong_holm_vs_first"].to_numpy() == pytest.approx(
        holm_adjust(b_rows["p_delong_vs_first"])
    )
    assert (b_rows["p_delong_holm_vs_first"] >= b_rows["p_delong_vs_first"]).all()
    assert pc[pc["run"] == "run"]["p_delong_holm_vs_first"].isna().all()  # the reference: no test
    md = (tmp_path / "cmp.md").read_text()
    assert "Holm-adjusted" in md and "p_delong_holm_vs_first" in md
    assert "| run |" in md and "ROC-AUC per class" in md and "[" in md
    assert "## Cost" in md and "| infer_images_per_s_b1 |" in md and "![roc](cmp_roc.png)" in md
    for key in ("roc", "metrics", "thresholds", "confidence"):
        assert (tmp_path / f"cmp_{key}.png").stat().st_size > 1000 and result.figures[key].exists()
    assert pd.read_csv(tmp_path / "cmp.csv").shape[0] == 3
    assert (tmp_path / "cmp_per_class.csv").exists()


def test_binary_summary_has_a_delong_p_value(tmp_path):
    a, _ = write_tiny_run(tmp_path / "a", "binary", 1, n=48)
    b = retrain_like(a, tmp_path / "b", seed=2)
    for run in (a, b):
        evaluate_run(run, n_boot=50, figures=False)
    s = compare_runs([a, b], n_boot=100).summary
    assert 0 <= s.loc[1, "p_delong"] <= 1


def test_different_test_images_are_an_error(three_runs, tmp_path):
    a, _, _ = three_runs
    other, _ = write_tiny_run(tmp_path / "other", "multilabel", 3, n=48)
    evaluate_run(other, n_boot=20, figures=False)
    with pytest.raises(ValueError, match="not evaluated on the same test images"):
        compare_runs([a, other])


def test_unevaluated_run_is_an_error(three_runs, tmp_path):
    a, _, _ = three_runs
    fresh, _ = write_tiny_run(tmp_path / "fresh", "multilabel", 3, n=16)
    with pytest.raises(FileNotFoundError, match="chestxai evaluate"):
        compare_runs([a, fresh])


def test_cli_compare(three_runs, tmp_path, capsys):
    a, b, _ = three_runs
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "x"), "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "Run comparison" in out and (tmp_path / "x.md").exists()


def test_cli_no_speed_writes_the_report_without_measuring(three_runs, tmp_path, capsys, monkeypatch):
    a, b, _ = three_runs
    monkeypatch.setattr(cost, "measure_speed", lambda *a, **k: pytest.fail("--no-speed measured"))
    out = tmp_path / "q"
    assert (
        main(["compare", str(a), str(b), "--out", str(out), "--n-boot", "20", "--no-speed", "--no-progress"])
        == 0
    )
    s = pd.read_csv(f"{out}.csv")
    assert s["infer_images_per_s_b1"].isna().all() and (s["speed_note"] == "not measured (--no-speed)").all()
    assert "not measured (--no-speed)" in capsys.readouterr().out
    assert (tmp_path / "q.html").exists() and (tmp_path / "q_roc.png").exists()


def test_existing_outputs_are_refused_without_force(three_runs, tmp_path, capsys):
    a, b, _ = three_runs
    notes = tmp_path / "x.md"
    notes.write_text("my notes")
    argv = ["compare", str(a), str(b), "--out", str(tmp_path / "x"), "--n-boot", "20"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "x.md exists" in err and "--force" in err and "Traceback" not in err
    assert notes.read_text() == "my notes" and not (tmp_path / "x.csv").exists()
    assert main([*argv, "--force"]) == 0
    assert "Run comparison" in notes.read_text()


def test_another_split_is_compared_from_its_own_files(three_runs, tmp_path):
    a, b, _ = three_runs
    with pytest.raises(FileNotFoundError, match="metrics-val.json.*--split val"):
        compare_runs([a, b], split="val")
    for run in (a, b):
        evaluate_run(run, split="val", n_boot=20, figures=False)
    s = compare_runs([a, b], split="val", n_boot=20).summary
    assert list(s["n_images"]) == [16, 16]


def test_runs_with_the_same_folder_name_are_told_apart(tmp_path):
    from chestxai.evaluation.compare import run_labels
    from chestxai.rundir import RunDir

    runs = [RunDir(tmp_path / "a" / "run"), RunDir(tmp_path / "b" / "run"), RunDir(tmp_path / "c")]
    assert run_labels(runs) == ["a/run", "b/run", "c"]


def test_cli_cuda_without_cuda_is_a_one_line_error(three_runs, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    a, b, _ = three_runs
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "g"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "Traceback" not in err and not (tmp_path / "g.md").exists()

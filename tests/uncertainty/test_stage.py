"""The stage: RUN/uncertainty/<method>/ written beside the run, never over it; bad input fails first."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai import cli
from chestxai.evaluation import evaluate_run
from chestxai.models.checkpoint import read_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import read_json
from chestxai.rundir.predictions import read_predictions
from chestxai.testing import write_tiny_run
from chestxai.uncertainty import stage
from chestxai.uncertainty.stage import uncertainty_run

from .conftest import tiny_dropout_run, with_dropout


@pytest.fixture
def no_inference(monkeypatch):
    """Fail the test if the stage reaches its first forward."""

    def boom(*a, **k):
        raise AssertionError("inference started before the input was checked")

    monkeypatch.setattr(stage, "predict_with_uncertainty", boom)


def test_mc_dropout_stage_writes_beside_the_run(dropout_run):
    run, _ = dropout_run
    evaluate_run(run, n_boot=20, figures=False)
    r = RunDir(run)
    before = r.predictions.read_bytes(), r.metrics.read_bytes()
    s = uncertainty_run(run, passes=5, n_boot=30, n_gallery=2)
    out = r.uncertainty_dir("mc-dropout")
    assert (r.predictions.read_bytes(), r.metrics.read_bytes()) == before
    preds = read_predictions(out.predictions)  # a predictions file like any other
    assert set(preds.frame["split"]) == {"val", "test"}
    for col in (
        "std_Pneumonia",
        "entropy_Pneumonia",
        "mi_Pneumonia",
        "decision_Pneumonia",
        "deterministic_Pneumonia",
    ):
        assert col in preds.frame.columns
    test = preds.select("test")
    th = s["thresholds"]["values"]["Pneumonia"]
    assert s["thresholds"]["source"] == "thresholds.json"
    assert (test.frame["decision_Pneumonia"].to_numpy() == (test.probs[:, 0] >= th)).all()
    saved = read_json(out.summary)
    assert saved["referral"]["oracle"][0]["fraction"] == 0.0
    assert {"std", "entropy", "mutual_information", "random", "confidence", "softmax", "oracle"} == set(
        saved["referral"]
    )
    assert "share the backbone" in saved["batching"] or "one backbone forward" in saved["batching"]
    assert saved["calibration"]["n_bins"] == 10 and "deterministic" in saved["calibration"]
    # issue 20 item 8: the averaged-probability AUC beside the deterministic one evaluate reports
    aucs = saved["roc_auc"]
    assert set(aucs) == {"mean_probs", "deterministic", "note"} and "chestxai evaluate" in aucs["note"]
    assert aucs["mean_probs"] == pytest.approx(saved["referral"]["random"][0]["roc_auc"])  # 0% referred
    assert "exact match" in saved["definitions"]["correct"]
    assert len(saved["gallery"]) == 4 and all((out.root / c["heatmap"]).is_file() for c in saved["gallery"])
    assert all((out.root / p).is_file() for p in saved["figures"].values())


def test_same_seed_same_files(dropout_run):
    run, _ = dropout_run
    out = RunDir(run).uncertainty_dir("tta")
    uncertainty_run(run, method="tta", passes=3, n_boot=10, n_gallery=0, figures=False)
    first = out.predictions.read_bytes(), out.summary.read_bytes()
    uncertainty_run(run, method="tta", passes=3, n_boot=10, n_gallery=0, figures=False)
    assert (out.predictions.read_bytes(), out.summary.read_bytes()) == first


def test_dropout_flag_is_labelled_in_the_outputs(tmp_path):
    run, _ = write_tiny_run(tmp_path / "plain")
    s = uncertainty_run(run, passes=3, dropout=0.2, n_boot=0, n_gallery=1, figures=False)
    assert "inserted at inference" in s["dropout"]


def test_bad_input_fails_before_any_work(tmp_path, no_inference):
    plain, _ = write_tiny_run(tmp_path / "plain")
    with pytest.raises(ValueError, match=r"model\.dropout=0\.0.*--dropout"):
        uncertainty_run(plain)
    with pytest.raises(ValueError, match="--passes"):
        uncertainty_run(plain, passes=0)
    with pytest.raises(ValueError, match="only make sense with --method ensemble"):
        uncertainty_run(plain, members=[plain])
    with pytest.raises(ValueError, match="not an ensemble run"):
        uncertainty_run(plain, method="ensemble")
    with pytest.raises(ValueError, match="--dropout only applies"):
        uncertainty_run(plain, method="tta", dropout=0.1)
    with pytest.raises(ValueError, match="split name"):
        uncertainty_run(plain, method="tta", split="../x")
    assert not (tmp_path / "plain" / "run" / "uncertainty").exists()


def test_ensemble_members_must_agree(tmp_path, no_inference):
    a, _ = tiny_dropout_run(tmp_path / "a")
    b, _ = write_tiny_run(tmp_path / "b", "multilabel", 2)
    with pytest.raises(ValueError, match="disagree on label names"):
        uncertainty_run(a, method="ensemble", members=[b])
    c, _ = tiny_dropout_run(tmp_path / "c", seed=1)
    ckpt = read_checkpoint(c / "checkpoint.pt")
    ckpt["preprocess"] = {**ckpt["preprocess"], "size": 64}
    save_atomic(ckpt, c / "checkpoint.pt")
    with pytest.raises(ValueError, match="disagree on preprocessing"):
        uncertainty_run(a, method="ensemble", members=[c])


def test_ensemble_of_runs_on_one_cache(tmp_path):
    a, cache = tiny_dropout_run(tmp_path / "a")
    b = tmp_path / "b"
    import shutil

    shutil.copytree(a, b)
    with_dropout(b, seed=1)
    ckpt = read_checkpoint(b / "checkpoint.pt")  # seeds fit slightly different normalisations: allowed
    ckpt["preprocess"] = {**ckpt["preprocess"], "mean": 0.45}
    save_atomic(ckpt, b / "checkpoint.pt")
    s = uncertainty_run(a, method="ensemble", members=[b], n_boot=10, n_gallery=1, figures=False)
    assert s["members"] == [str(a), str(b)] and sum(s["member_weights"]) == pytest.approx(1.0)
    assert np.isfinite(s["aurc"]["mutual_information"])


def test_a_folder_this_command_did_not_write_is_refused(dropout_run):
    run, _ = dropout_run
    out = RunDir(run).uncertainty_dir("mc-dropout").root
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        uncertainty_run(run, passes=2)


def test_cli_offers_every_method():
    from chestxai.commands import uncertainty as command
    from chestxai.uncertainty.methods import list_methods

    assert list(command.METHODS) == list_methods()


def test_cli_rejects_zero_passes_and_runs(dropout_run, capsys):
    run, _ = dropout_run
    with pytest.raises(SystemExit) as exc:
        cli.main(["uncertainty", str(run), "--passes", "0"])
    assert exc.value.code == 2 and "--passes must be >= 1" in capsys.readouterr().err
    code = cli.main(
        ["uncertainty", str(run), "--passes", "2", "--n-boot", "10", "--gallery", "1", "--no-progress"]
    )
    assert code == 0 and "ROC-AUC retained by oracle" in capsys.readouterr().out


def test_member_inputs_renormalise_the_same_pixels():
    import torch

    from chestxai.models.preprocess import to_input
    from chestxai.uncertainty.forward import member_inputs

    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16), dtype=np.uint8)
    pre = [{"size": 16, "mean": 0.5, "std": 0.25}, {"size": 16, "mean": 0.45, "std": 0.2}]
    xs = member_inputs(to_input(pixels, pre[0]), pre, 2)
    assert torch.allclose(xs[1], to_input(pixels, pre[1]), atol=1e-5)

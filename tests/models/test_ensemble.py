"""Ensembles: weights fitted on val favour the better member; an ensemble is a complete run
directory that ``evaluate``, ``compare`` and ``report`` read like any run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from chestxai.cli import main
from chestxai.evaluation import compare_runs, evaluate_run
from chestxai.evaluation.ensemble_runs import ensemble_runs
from chestxai.metrics.ensemble_weights import fit_weights, weighted_average
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, read_checkpoint, save_atomic
from chestxai.report import build_report
from chestxai.rundir import RunDir
from chestxai.testing import write_tiny_run


def test_weights_favour_the_informative_member() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((400, 1)) < 0.5).astype(np.float32)
    good = np.clip(y * 0.8 + 0.1 + rng.normal(0, 0.05, y.shape), 0.01, 0.99)
    noise = rng.random(y.shape)
    fit = fit_weights([good, noise], y, "binary")
    assert fit.weights.sum() == pytest.approx(1.0) and (fit.weights >= 0).all()
    assert fit.weights[0] > 0.9
    assert fit.val_log_loss <= min(fit.member_val_log_loss) + 1e-4  # never materially worse than the best


def test_weighted_average_keeps_softmax_rows() -> None:
    a = np.array([[0.7, 0.2, 0.1]])
    b = np.array([[0.1, 0.1, 0.8]])
    out = weighted_average([a, b], np.array([0.25, 0.75]))
    np.testing.assert_allclose(out.sum(1), 1.0)
    np.testing.assert_allclose(out, 0.25 * a + 0.75 * b)


def test_needs_two_members() -> None:
    with pytest.raises(ValueError, match="at least two"):
        fit_weights([np.zeros((3, 1))], np.zeros((3, 1)), "binary")


def _second_member(src, dst, seed: int):
    """Another (untrained) model on the same cache and splits: the run copied, new weights saved."""
    shutil.copytree(src, dst)
    ckpt = read_checkpoint(dst / "checkpoint.pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("mobilenetv2", num_labels=1, task="binary", input_size=32)
    save_atomic(
        make_checkpoint(model, ckpt["label_names"], ckpt["preprocess"], ckpt["config"], epoch=2),
        dst / "checkpoint.pt",
    )
    return dst


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    a, _ = write_tiny_run(root / "a", "binary", 1, n=64, patient_id=[f"p{i // 2}" for i in range(64)])
    b = _second_member(a, root / "b", seed=1)
    for run in (a, b):
        evaluate_run(run, n_boot=30, figures=False)
    out = root / "ens"
    result = ensemble_runs([a, b], out, n_boot=30)
    return a, b, out, result


def test_an_ensemble_is_a_complete_run_directory(ensemble) -> None:
    a, b, out, result = ensemble
    run = RunDir(out)
    for path in (run.ensemble, run.config, run.splits, run.predictions, run.metrics, run.thresholds):
        assert path.is_file(), path.name
    assert (run.figures / "roc.png").is_file()
    manifest = json.loads(run.ensemble.read_text())
    assert manifest["runs"] == [str(a.resolve()), str(b.resolve())]
    assert sum(manifest["weights"]) == pytest.approx(1.0) and result["weights"] == manifest["weights"]
    assert run.splits.read_bytes() == (a / "splits.csv").read_bytes()
    preds = pd.read_csv(run.predictions)
    assert set(preds["split"]) == {"val", "test"} and len(preds) == 48
    members = [pd.read_csv(RunDir(r).predictions) for r in (a, b)]
    expected = weighted_average([m["p_Pneumonia"].to_numpy()[:, None] for m in members], manifest["weights"])
    np.testing.assert_allclose(preds["p_Pneumonia"], expected[:, 0])
    metrics = json.loads(run.metrics.read_text())
    assert metrics["split"] == "test" and metrics["ensemble"]["weights"] == manifest["weights"]
    th = json.loads(run.thresholds.read_text())
    assert th["values"] == metrics["thresholds"]["values"] and th["checkpoint"] is None


def test_compare_and_report_read_an_ensemble(ensemble, tmp_path) -> None:
    a, b, out, _ = ensemble
    # once impossible: an ensemble has no checkpoint
    s = compare_runs([a, out], n_boot=50, speed=False).summary
    assert s.loc[1, "model"] == "ensemble(resnet18+mobilenetv2)"
    params = [
        sum(p.numel() for p in create_model(n, 1, "binary", input_size=32).parameters())
        for n in ("resnet18", "mobilenetv2")
    ]
    assert s.loc[1, "params"] == sum(params)
    assert s.loc[1, "train_time_s"] == pytest.approx(2 * 4.5)  # both members' history.csv summed
    html = build_report(out, out=tmp_path / "ens.html").read_text()
    assert 'id="ensemble"' in html and "weight" in html and 'id="metrics"' in html


def test_evaluate_predicts_with_the_members(ensemble, tmp_path) -> None:
    _, _, out, _ = ensemble
    again = evaluate_run(out, split="val", n_boot=20, figures=False)
    val = pd.read_csv(RunDir(out).predictions_for("val"))
    stored = pd.read_csv(RunDir(out).predictions)
    stored = stored[stored["split"] == "val"]
    np.testing.assert_allclose(val["p_Pneumonia"], stored["p_Pneumonia"], rtol=1e-5)  # same average
    assert again["model"].startswith("ensemble of") and again["checkpoint"] is None


def test_explain_refuses_an_ensemble_in_one_line(ensemble, capsys) -> None:
    _, _, out, _ = ensemble
    assert main(["explain", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is an ensemble; explanations need a single model" in err and "Traceback" not in err


def test_ensemble_out_must_be_new_or_empty(ensemble) -> None:
    a, b, out, _ = ensemble
    with pytest.raises(FileExistsError, match="not empty"):
        ensemble_runs([a, b], out)


def test_members_on_other_images_are_refused(ensemble, tmp_path) -> None:
    a, _, _, _ = ensemble
    other, _ = write_tiny_run(tmp_path / "o", "binary", 1, n=32)
    evaluate_run(other, n_boot=10, figures=False)
    with pytest.raises(ValueError, match="disagree on training cache|other val images"):
        ensemble_runs([a, other], tmp_path / "ens")

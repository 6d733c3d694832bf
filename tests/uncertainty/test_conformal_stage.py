"""``chestxai uncertainty RUN --conformal``: on run folders holding only ``metrics.json`` and
``predictions.csv`` (what evaluate writes), the ``conformal`` entry agrees with a recomputation
from the per-image ``conformal.csv``, per task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chestxai.cli import main
from chestxai.metrics.conformal import binomial_ci
from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import write_json
from chestxai.rundir.predictions import predictions_frame, write_predictions
from chestxai.uncertainty.conformal import load_conformal
from chestxai.uncertainty.conformal_stage import conformal_run


def fake_run(root: Path, task: str, n_val: int = 300, n_test: int = 300, seed: int = 0) -> Path:
    """A run folder with evaluate's two files: probabilities calibrated by construction."""
    rng = np.random.default_rng(seed)
    n = n_val + n_test
    if task == "multiclass":
        names = ["a", "b", "c"]
        p = rng.dirichlet(np.full(3, 0.6), size=n)
        y = np.eye(3)[np.minimum((rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1), 2)]
    elif task == "binary":
        names = ["Pneumonia"]
        p = rng.beta(0.7, 0.7, size=(n, 1))
        y = (rng.random((n, 1)) < p).astype(float)
    else:
        names = ["x", "y", "z", "w"]
        p = rng.beta(0.5, 1.5, size=(n, 4))
        y = (rng.random((n, 4)) < p).astype(float)
        y[0, 0] = np.nan  # an unknown finding is neither positive nor negative
    split = ["val"] * n_val + ["test"] * n_test
    ids = [f"img{i}" for i in range(n)]
    run = RunDir(root)
    run.root.mkdir(parents=True)
    write_predictions(
        predictions_frame(ids, [f"pt{i // 2}" for i in range(n)], split, p, y, names), run.predictions
    )
    write_json({"task": task, "label_names": names}, run.metrics)
    return run.root


@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_coverage_recomputed_from_per_image_output(tmp_path, task):
    run = fake_run(tmp_path / "run", task)
    s = conformal_run(run, 0.1, n_boot=50)
    c = s["conformal"]
    rows = pd.read_csv(RunDir(run).conformal.conformal_sets)
    test = rows[rows["split"] == "test"]
    names = s["label_names"]
    y = test[[f"y_{n}" for n in names]].to_numpy()
    if task == "multiclass":
        truth = np.asarray(names)[y.argmax(axis=1)]
        covered = [
            t in str(cell).split("|") for t, cell in zip(truth, test["conformal_set"].fillna(""), strict=True)
        ]
        assert c["mean_set_size"] == pytest.approx(test["conformal_set_size"].mean())
    else:
        truth = y[:, 0].astype(int)
        bins = test["triage"].to_numpy()
        p = test["p_Pneumonia"].to_numpy()
        cut = c["thresholds"]
        in0 = p <= cut["negative_in_set_if_p_at_most"] + 1e-8
        in1 = p >= cut["positive_in_set_if_p_at_least"] - 1e-8
        empty = ~in0 & ~in1
        np.testing.assert_array_equal(
            bins == "negative", (in0 & ~in1) | (empty & (p < cut["empty_set_called_at"]))
        )
        np.testing.assert_array_equal(bins == "refer", in0 & in1)
        covered = np.where(truth == 1, in1, in0)
        fnr = ((bins == "negative") & (truth == 1)).sum() / (truth == 1).sum()
        assert c["test"]["triage"]["fnr"]["value"] == pytest.approx(fnr)
        assert c["share_referred"] == pytest.approx((bins == "refer").mean())
    k = int(np.sum(covered))
    assert c["coverage"]["k"] == k and c["coverage"]["n"] == len(test)
    assert c["coverage"]["value"] == pytest.approx(k / len(test))
    assert c["coverage"]["ci"] == pytest.approx(binomial_ci(k, len(test)))
    assert "exchangeab" in c["assumption"]
    assert {"conformal_set", "softmax", "confidence", "random", "oracle"} <= set(s["referral"])


def test_multilabel_fnr_recomputed(tmp_path):
    run = fake_run(tmp_path / "run", "multilabel")
    s = conformal_run(run, 0.2, n_boot=50)
    c = s["conformal"]
    assert c["method"] == "crc"
    rows = pd.read_csv(RunDir(run).conformal.conformal_sets)
    test = rows[rows["split"] == "test"]
    t = c["thresholds"]["call_finding_if_p_at_least"]
    names = s["label_names"]
    p, y = test[[f"p_{n}" for n in names]].to_numpy(), test[[f"y_{n}" for n in names]].to_numpy()
    pos = y == 1
    has = pos.any(axis=1)
    fnr = ((pos & (p < t)).sum(axis=1) / np.maximum(pos.sum(axis=1), 1))[has]
    assert c["fnr"]["value"] == pytest.approx(fnr.mean())
    np.testing.assert_allclose(test["fnr"].to_numpy()[has], fnr)
    assert c["fnr"]["ci"][0] <= c["fnr"]["value"] <= c["fnr"]["ci"][1]


def test_predict_side_reads_the_same_rule(tmp_path):
    run = fake_run(tmp_path / "run", "multiclass")
    conformal_run(run, 0.1, score="aps", class_conditional=True, n_boot=0)
    cal = load_conformal(run)
    assert cal is not None and cal.method == "aps" and cal.calibration.class_conditional
    rows = pd.read_csv(RunDir(run).conformal.conformal_sets)
    p = rows[["p_a", "p_b", "p_c"]].to_numpy()
    assert cal.apply(p)["conformal_set"] == rows["conformal_set"].fillna("").tolist()


def test_cli_and_refusals(tmp_path, capsys):
    run = fake_run(tmp_path / "run", "binary")
    assert (
        main(["uncertainty", str(run), "--conformal", "--alpha", "0.05", "--n-boot", "20", "--no-progress"])
        == 0
    )
    out = capsys.readouterr().out
    assert "coverage" in out and "exchangeab" in out and "FNR" in out and "NPV" in out
    summary = json.loads((RunDir(run).conformal.summary).read_text())
    assert summary["conformal"]["alpha"] == 0.05 and summary["conformal"]["method"] == "triage"
    with pytest.raises(ValueError, match="multi-class"):
        conformal_run(run, 0.1, class_conditional=True)
    with pytest.raises(SystemExit):
        main(["uncertainty", str(run), "--conformal", "--alpha", "1.5"])
    assert main(["uncertainty", str(run), "--alpha", "0.1"]) == 2
    assert "only applies with --conformal" in capsys.readouterr().err
    other = RunDir(tmp_path / "other")
    other.root.mkdir()
    with pytest.raises(FileNotFoundError, match="chestxai evaluate"):
        conformal_run(other.root)
    # a folder the command did not write is never overwritten
    foreign = fake_run(tmp_path / "f", "binary")
    RunDir(foreign).conformal.root.mkdir(parents=True)
    (RunDir(foreign).conformal.root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        conformal_run(foreign)


def test_report_shows_the_assumption_and_flags_a_shift(tmp_path, capsys):
    from chestxai.report.uncertainty import has_uncertainty, uncertainty_section

    run = fake_run(tmp_path / "run", "multiclass")
    conformal_run(run, 0.1, n_boot=0)
    assert has_uncertainty(RunDir(run))
    html = uncertainty_section(RunDir(run))
    assert (
        "Conformal guarantee" in html and "exchangeable" in html and "consistent with the guarantee" in html
    )
    # test rows made harder than val (labels shuffled): coverage falls below 1 - alpha, flagged
    shifted = fake_run(tmp_path / "shifted", "multiclass", seed=1)
    frame = pd.read_csv(RunDir(shifted).predictions)
    test = frame["split"] == "test"
    ys = ["y_a", "y_b", "y_c"]
    frame.loc[test, ys] = frame.loc[test, ys].sample(frac=1, random_state=0).to_numpy()
    frame.to_csv(RunDir(shifted).predictions, index=False)
    conformal_run(shifted, 0.1, n_boot=0)
    html = uncertainty_section(RunDir(shifted))
    assert "not exchangeable" in html
    # the command says the same on the terminal, from the same rule
    args = ["uncertainty", str(shifted), "--conformal", "--n-boot", "0", "--force", "--no-progress"]
    assert main(args) == 0
    assert "warning: the test figures miss the guarantee" in capsys.readouterr().out

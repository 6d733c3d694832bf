"""``evaluate_run`` on tiny runs of every task: files, sklearn-equal metrics, thresholds, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from tiny_runs import NIH14, SPLIT_CYCLE, tiny_labels, write_tiny_cache, write_tiny_run

from chestxai.cli import main
from chestxai.evaluation import evaluate_run
from chestxai.locks import exclusive
from chestxai.metrics.classification import MetricWarning
from chestxai.metrics.run_figures import FIGURES
from chestxai.models.checkpoint import read_checkpoint
from chestxai.rundir import RunDir, prob_column, target_column
from chestxai.rundir.thresholds import operating_thresholds

CASES = {"binary": 1, "multiclass": 4, "multilabel": 14}
N = 48


def strict_json(path):
    def no_constants(name):
        raise AssertionError(f"{path} contains {name}: not valid JSON")

    return json.loads(path.read_text(), parse_constant=no_constants)


@pytest.fixture(scope="module", params=list(CASES))
def evaluated(request, tmp_path_factory):
    """One evaluated tiny run per task (patients own 4 consecutive images; for multi-label the
    last finding, Hernia, is absent from the test split)."""
    task = request.param
    root = tmp_path_factory.mktemp(task)
    labels = None
    if task == "multilabel":
        labels = tiny_labels(task, N, 14, np.random.default_rng(0))
        test_rows = np.array([SPLIT_CYCLE[i % 4] == "test" for i in range(N)])
        labels[test_rows, 13] = 0.0
    patients = [f"p{i // 4}" for i in range(N)]
    run, cache = write_tiny_run(root, task, CASES[task], n=N, labels=labels, patient_id=patients)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_run(run, n_boot=200, seed=0)
    return task, run, cache, result, caught


def test_writes_predictions_metrics_and_figures(evaluated):
    task, run, _, result, _ = evaluated
    names = result["label_names"]
    preds = pd.read_csv(run / "predictions.csv", dtype={"image_id": str, "patient_id": str})
    expected = (
        ["image_id", "patient_id", "split"]
        + [prob_column(n) for n in names]
        + [target_column(n) for n in names]
    )
    assert list(preds.columns) == expected
    assert preds["split"].value_counts().to_dict() == {"test": N // 2, "val": N // 4}
    assert preds["image_id"].is_unique
    metrics = strict_json(run / "metrics.json")
    assert metrics == json.loads(json.dumps(metrics))
    assert metrics["split"] == "test" and metrics["task"] == task and metrics["label_names"] == names
    for name in FIGURES:
        path = run / "figures" / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert sorted(metrics["figures"]) == sorted(FIGURES)
    if task == "multilabel":
        assert names == NIH14


def sklearn_per_class(y, p, pred):
    return {
        "accuracy": accuracy_score(y, pred),
        "balanced_accuracy": balanced_accuracy_score(y, pred) if len(np.unique(y)) > 1 else None,
        "precision": precision_score(y, pred, zero_division=np.nan),
        "recall": recall_score(y, pred, zero_division=np.nan),
        "specificity": recall_score(1 - y, 1 - pred, zero_division=np.nan),
        "f1": f1_score(y, pred, zero_division=np.nan),
        "roc_auc": roc_auc_score(y, p) if len(np.unique(y)) > 1 else None,
        "average_precision": average_precision_score(y, p) if y.any() else None,
    }


def close(stored, expected):
    if expected is None or (isinstance(expected, float) and np.isnan(expected)):
        return stored is None
    return stored == pytest.approx(expected, abs=1e-9)


def test_metrics_equal_a_sklearn_recomputation_from_predictions_csv(evaluated):
    task, run, _, _, _ = evaluated
    metrics = strict_json(run / "metrics.json")
    names = metrics["label_names"]
    preds = pd.read_csv(run / "predictions.csv")
    test = preds[preds["split"] == "test"]
    probs = test[[prob_column(n) for n in names]].to_numpy()
    targets = test[[target_column(n) for n in names]].to_numpy()
    if task == "multiclass":
        decided = np.eye(len(names))[probs.argmax(1)]
    else:
        th = np.array([metrics["thresholds"]["values"][n] for n in names])
        decided = (probs >= th).astype(float)
    per = metrics["metrics"]["per_class"]
    recomputed = {}
    for c, name in enumerate(names):
        m = ~np.isnan(targets[:, c])
        ref = sklearn_per_class(targets[m, c], probs[m, c], decided[m, c])
        recomputed[name] = ref
        for key, v in ref.items():
            assert close(per[name][key]["value"], v), (name, key, per[name][key]["value"], v)
    macro = metrics["metrics"]["macro"]
    for key in ("roc_auc", "f1", "recall", "specificity", "accuracy"):
        vals = [r[key] for r in recomputed.values() if r[key] is not None and not np.isnan(r[key])]
        assert close(macro[key]["value"], float(np.mean(vals))), key
    if task == "multiclass":
        y = targets.argmax(1)
        overall = metrics["metrics"]["overall"]
        assert close(overall["accuracy"]["value"], accuracy_score(y, probs.argmax(1)))
        assert close(macro["roc_auc"]["value"], roc_auc_score(y, probs, multi_class="ovr"))
    known = ~np.isnan(targets)
    assert close(metrics["metrics"]["micro"]["roc_auc"]["value"], roc_auc_score(targets[known], probs[known]))


def test_intervals_contain_point_estimates_and_resample_patients(evaluated):
    _, _, _, result, _ = evaluated
    assert result["bootstrap"]["unit"] == "patient"
    assert result["n_patients"] == N // 4  # each patient owns 4 consecutive rows, 2 of them test
    for avg in ("macro", "micro", "weighted"):
        for key, entry in result["metrics"][avg].items():
            if entry["value"] is None or entry["ci"][0] is None:
                continue
            assert entry["ci"][0] - 1e-9 <= entry["value"] <= entry["ci"][1] + 1e-9, (avg, key)


def test_thresholds_chosen_on_val_live_in_thresholds_json_not_the_checkpoint(evaluated):
    task, run, _, result, _ = evaluated
    th = result["thresholds"]
    assert set(read_checkpoint(run / "checkpoint.pt")["thresholds"].values()) == {0.5}  # never rewritten
    if task == "multiclass":
        assert th["values"] is None and th["chosen_on"].startswith("argmax")
        assert not (run / "thresholds.json").exists() and th["stored_in"] is None
    else:
        assert th["chosen_on"] == "val" and th["policy"] == "youden"
        assert th["stored_in"] == str(run / "thresholds.json")
        stored = strict_json(run / "thresholds.json")
        assert stored["values"] == pytest.approx(th["values"]) and stored["chosen_on"] == "val"
        assert stored["epoch"] == 3 and stored["policy"] == "youden"
        assert (
            operating_thresholds(RunDir(run), names_of(result), {"x": 0.5}, epoch=3).values
            == stored["values"]
        )
        # thresholds chosen for another epoch of the checkpoint are stale: the defaults apply
        stale = operating_thresholds(RunDir(run), names_of(result), None, epoch=4)
        assert stale.source == "default 0.5"


def names_of(result):
    return result["label_names"]


def test_metrics_record_the_checkpoint_epoch_they_scored(evaluated):
    _, run, _, result, _ = evaluated
    assert result["checkpoint_epoch"] == 3 and result["checkpoint"] == str(run / "checkpoint.pt")


def test_calibration_is_reported(evaluated):
    task, _, _, result, _ = evaluated
    cal = result["calibration"]
    assert 0 <= cal["ece"] <= 1 and cal["temperature"] > 0
    assert cal["after_temperature"]["nll"] <= cal["nll"] + 0.05  # fitted on val, applied on test
    assert sum(cal["reliability"]["count"]) > 0
    assert ("ece_per_class" in cal) == (task != "multiclass")


def test_absent_class_is_nan_with_a_warning(evaluated):
    task, _, _, result, caught = evaluated
    if task != "multilabel":
        pytest.skip("only the multi-label case has a class absent from test")
    assert result["metrics"]["per_class"]["Hernia"]["roc_auc"]["value"] is None
    assert any(issubclass(w.category, MetricWarning) and "Hernia" in str(w.message) for w in caught)
    assert result["metrics"]["macro"]["roc_auc"]["value"] is not None


# --- single runs: flags and errors ---------------------------------------------------------------
@pytest.fixture
def binary_run(tmp_path):
    return write_tiny_run(tmp_path, "binary", 1, n=32)


def test_different_label_names_name_both_lists(binary_run, tmp_path):
    run, _ = binary_run
    rng = np.random.default_rng(0)
    other = write_tiny_cache(
        tmp_path / "other", rng.integers(0, 255, (8, 32, 32)), np.zeros((8, 1)), ["Effusion"], "binary"
    )
    with pytest.raises(ValueError, match=r"\['Effusion'\].*\['Pneumonia'\].*--data"):
        evaluate_run(run, data=other, figures=False)


def test_run_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        evaluate_run(tmp_path / "empty")


def test_unknown_split_lists_the_available_ones(binary_run):
    run, _ = binary_run
    with pytest.raises(
        ValueError, match=r"no images in split 'holdout'.*available splits: \['test', 'train', 'val'\]"
    ):
        evaluate_run(run, split="holdout", figures=False)


def test_without_splits_csv_the_cache_split_column_is_used(tmp_path):
    run, cache = write_tiny_run(tmp_path, "binary", 1, n=32, splits_csv=False, history=False)
    result = evaluate_run(run, n_boot=50, figures=False)
    assert "index.csv split column" in result["splits_from"]
    assert result["n_images"] == 16


def test_splits_csv_that_does_not_match_the_cache_is_an_error(binary_run):
    run, _ = binary_run
    s = pd.read_csv(run / "splits.csv")
    s.loc[0, "image_id"] = "someone-else"
    s.to_csv(run / "splits.csv", index=False)
    with pytest.raises(ValueError, match="splits.csv does not match cache"):
        evaluate_run(run, figures=False)


def _external(tmp_path, n=20):
    rng = np.random.default_rng(1)
    return write_tiny_cache(
        tmp_path / "external",
        rng.integers(0, 255, (n, 32, 32)),
        (rng.random((n, 1)) < 0.5).astype(np.float32),
        ["Pneumonia"],
        "binary",
    )


def test_other_data_goes_to_out_and_uses_the_runs_operating_thresholds(binary_run, tmp_path):
    run, _ = binary_run
    own = evaluate_run(run, n_boot=20, figures=False)  # the run's own results and thresholds.json
    own_files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    external = _external(tmp_path)
    out = tmp_path / "external-results"
    result = evaluate_run(run, data=external, out=out, n_boot=50)
    assert result["n_images"] == 20 and result["cache"] == str(external)
    assert result["thresholds"]["chosen_on"] == f"thresholds.json of {run}"
    assert result["thresholds"]["values"] == own["thresholds"]["values"]
    assert result["thresholds"]["stored_in"] is None
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == own_files  # untouched
    assert not (run / "figures").exists()
    assert strict_json(out / "metrics.json")["cache"] == str(external)
    assert (out / "predictions.csv").is_file() and (out / "figures" / "roc.png").is_file()
    assert not (out / "thresholds.json").exists()
    # write_tiny_cache uses image ids as patient ids: no grouping, so the bootstrap resamples images
    # (issue 20 item 8: it said "patient" and the report "20 images of 20 patients")
    assert result["bootstrap"]["unit"] == "image"


def test_other_data_needs_a_new_or_empty_out(binary_run, tmp_path):
    run, _ = binary_run
    external = _external(tmp_path)
    with pytest.raises(ValueError, match="--out DIR"):
        evaluate_run(run, data=external, n_boot=20, figures=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty.*--force"):
        evaluate_run(run, data=external, out=busy, n_boot=20, figures=False)
    evaluate_run(run, data=external, out=busy, n_boot=20, figures=False, force=True)
    assert (busy / "notes.txt").read_text() == "mine" and (busy / "metrics.json").is_file()
    assert not (run / "metrics.json").exists()


def test_another_split_gets_its_own_files(binary_run):
    run, _ = binary_run
    test = evaluate_run(run, n_boot=20, figures=False)
    before = (run / "metrics.json").read_bytes(), (run / "predictions.csv").read_bytes()
    val = evaluate_run(run, split="val", n_boot=20)
    assert ((run / "metrics.json").read_bytes(), (run / "predictions.csv").read_bytes()) == before
    assert strict_json(run / "metrics-val.json")["split"] == "val" and val["n_images"] != test["n_images"]
    assert set(pd.read_csv(run / "predictions-val.csv")["split"]) == {"val"}
    assert (run / "figures-val" / "roc.png").is_file() and not (run / "figures").exists()


def test_calibrated_applies_the_val_temperature_before_metrics(binary_run):
    run, _ = binary_run
    plain = evaluate_run(run, n_boot=20, figures=False)
    raw = pd.read_csv(run / "predictions.csv")
    cal = evaluate_run(run, n_boot=20, figures=False, calibrated=True)
    t = cal["calibrated"]["temperature"]
    assert cal["calibrated"]["fitted_on"] == "val" and plain["calibrated"] is None
    assert t == pytest.approx(plain["calibration"]["temperature"])  # the temperature fitted on val
    scaled = pd.read_csv(run / "predictions.csv")
    logit = np.log(raw["p_Pneumonia"] / (1 - raw["p_Pneumonia"]))
    np.testing.assert_allclose(scaled["p_Pneumonia"], 1 / (1 + np.exp(-logit / t)), rtol=1e-6)
    assert cal["calibration"]["nll"] == pytest.approx(plain["calibration"]["after_temperature"]["nll"])
    assert strict_json(run / "thresholds.json")["temperature"] == pytest.approx(t)
    assert strict_json(run / "metrics.json")["calibrated"]["temperature"] == pytest.approx(t)


def test_calibrated_without_validation_images_is_an_error(binary_run, tmp_path):
    run, _ = binary_run
    with pytest.raises(ValueError, match="--calibrated needs validation"):
        evaluate_run(run, data=_external(tmp_path), out=tmp_path / "o", calibrated=True, figures=False)


def test_a_run_that_is_still_training_is_refused(binary_run, capsys):
    run, _ = binary_run
    with exclusive(run, "run directory"):
        assert main(["evaluate", str(run), "--n-boot", "10", "--no-figures"]) == 2
        err = capsys.readouterr().err
        assert "still training" in err and "--force" in err and "Traceback" not in err
        assert not (run / "metrics.json").exists()
        assert main(["evaluate", str(run), "--n-boot", "10", "--no-figures", "--force"]) == 0
    assert strict_json(run / "metrics.json")["checkpoint_epoch"] == 3


def test_a_malicious_checkpoint_is_refused_in_one_line(binary_run, tmp_path, capsys):
    run, _ = binary_run

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": 1, "x": Boom()}, run / "checkpoint.pt")
    assert main(["evaluate", str(run)]) == 2
    cap = capsys.readouterr()
    assert "pwned" not in cap.out
    assert "is not a chestxai checkpoint; refused to unpickle it" in cap.err and "Traceback" not in cap.err
    with pytest.raises(ValueError, match="refused to unpickle"):
        read_checkpoint(run / "checkpoint.pt")
    (run / "checkpoint.pt").write_text("<html>not a checkpoint</html>")
    with pytest.raises(ValueError, match="is not a chestxai checkpoint"):
        read_checkpoint(run / "checkpoint.pt")


def test_cli_evaluate_with_a_sensitivity_policy(binary_run, capsys):
    run, _ = binary_run
    rc = main(
        ["evaluate", str(run), "--threshold-policy", "sensitivity:0.95", "--n-boot", "50", "--no-figures"]
    )
    assert rc == 0
    assert "macro roc_auc" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    t = metrics["thresholds"]["values"]["Pneumonia"]
    preds = pd.read_csv(run / "predictions.csv")
    val = preds[preds["split"] == "val"]
    pos = val["y_Pneumonia"] == 1
    assert (val.loc[pos, "p_Pneumonia"] >= t).mean() >= 0.95  # the policy holds where it was chosen
    assert not (run / "figures").exists()


def test_cli_errors_are_one_line(binary_run, capsys):
    run, _ = binary_run
    assert main(["evaluate", str(run), "--threshold-policy", "best"]) == 2
    assert "--threshold-policy" in capsys.readouterr().err
    assert main(["evaluate", str(run.parent / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_predictions_threshold_sources():
    from chestxai.evaluation import evaluate_predictions

    rng = np.random.default_rng(0)
    y = (rng.random((40, 2)) < 0.5).astype(float)
    p = np.clip(0.5 * y + 0.5 * rng.random((40, 2)), 0, 1)
    names = ["a", "b"]
    fixed = evaluate_predictions(
        p, y, "multilabel", names, val_probs=p, val_targets=y, threshold_policy="0.3", n_boot=20
    )
    assert fixed["thresholds"]["chosen_on"] == "fixed" and fixed["thresholds"]["values"] == {
        "a": 0.3,
        "b": 0.3,
    }
    stored = {"a": 0.2, "b": 0.7}
    no_val = evaluate_predictions(p, y, "multilabel", names, default_thresholds=stored, n_boot=20)
    assert no_val["thresholds"]["chosen_on"] == "checkpoint" and no_val["thresholds"]["values"] == stored
    assert no_val["metrics"]["per_class"]["b"]["threshold"] == 0.7
    assert no_val["calibration"]["temperature"] is None
    assert no_val["bootstrap"]["unit"] == "image"

"""``evaluate_run`` on tiny runs of every task: files, sklearn-equal metrics, thresholds, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
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
from chestxai.evaluation.figures import FIGURES
from chestxai.evaluation.metrics import MetricWarning
from chestxai.models.checkpoint import read_checkpoint
from chestxai.rundir import prob_column, target_column

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


def test_thresholds_chosen_on_val_are_stored_in_the_checkpoint(evaluated):
    task, run, _, result, _ = evaluated
    th = result["thresholds"]
    stored = read_checkpoint(run / "checkpoint.pt")["thresholds"]
    if task == "multiclass":
        assert th["values"] is None and th["chosen_on"].startswith("argmax")
        assert set(stored.values()) == {0.5}
    else:
        assert th["chosen_on"] == "val" and th["policy"] == "youden" and th["stored_in_checkpoint"]
        assert stored == pytest.approx(th["values"])


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
    with pytest.raises(ValueError, match=r"no images in split 'holdout'.*\['test', 'train', 'val'\]"):
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


def test_external_cache_without_splits_uses_checkpoint_thresholds(binary_run, tmp_path):
    run, _ = binary_run
    rng = np.random.default_rng(1)
    external = write_tiny_cache(
        tmp_path / "external",
        rng.integers(0, 255, (20, 32, 32)),
        (rng.random((20, 1)) < 0.5).astype(np.float32),
        ["Pneumonia"],
        "binary",
    )
    before = read_checkpoint(run / "checkpoint.pt")["thresholds"]
    result = evaluate_run(run, data=external, n_boot=50, figures=False)
    assert result["n_images"] == 20 and result["cache"] == str(external)
    assert (
        result["thresholds"]["chosen_on"] == "checkpoint" and not result["thresholds"]["stored_in_checkpoint"]
    )
    assert read_checkpoint(run / "checkpoint.pt")["thresholds"] == before
    assert result["bootstrap"]["unit"] == "patient"  # write_tiny_cache uses image ids as patient ids


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

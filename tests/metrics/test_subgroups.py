"""Subgroup metrics against a per-group scikit-learn computation and Fairlearn's MetricFrame."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, recall_score, roc_auc_score

from chestxai.metrics.calibration import expected_calibration_error
from chestxai.metrics.subgroups import age_bin_names, age_groups, subgroup_metrics, weighted_ece

NAMES = ["Effusion", "Mass"]
TH = np.array([0.4, 0.6])


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.35).astype(np.float32)
    probs = np.clip(0.35 * y + 0.65 * rng.random((n, 2)), 0, 1)
    sex = rng.choice(np.array(["F", "M", None], dtype=object), n, p=[0.45, 0.45, 0.1])
    y[rng.random((n, 2)) < 0.05] = np.nan  # unknown targets leave that finding only
    patients = rng.integers(0, n // 2, n).astype(str)
    return probs, y, sex, patients


def _fpr(y, d):
    tn, fp, fn, tp = confusion_matrix(y, d, labels=[0, 1]).ravel()
    return fp / (fp + tn)


def test_per_group_values_equal_scikit_learn():
    probs, y, sex, patients = _data()
    out = subgroup_metrics(probs, y, "multilabel", NAMES, {"sex": sex}, TH, patients, n_boot=50, min_count=5)
    groups = out["attributes"]["sex"]["findings"]
    for c, name in enumerate(NAMES):
        for g in ("F", "M"):
            rows = (sex == g) & ~np.isnan(y[:, c])
            yt, p = y[rows, c], probs[rows, c]
            d = (p >= TH[c]).astype(int)
            e = groups[name]["groups"][g]
            assert e["status"] == "scored" and e["n"] == rows.sum() and e["n_pos"] == yt.sum()
            assert e["roc_auc"]["value"] == pytest.approx(roc_auc_score(yt, p))
            assert e["sensitivity"]["value"] == pytest.approx(recall_score(yt, d))
            assert e["fpr"]["value"] == pytest.approx(_fpr(yt, d))
            assert e["ece"]["value"] == pytest.approx(expected_calibration_error(p, yt))
            lo, hi = e["roc_auc"]["ci"]
            assert lo <= e["roc_auc"]["value"] <= hi
    assert out["attributes"]["sex"]["n_missing"] == int(sum(v is None for v in sex))
    assert out["bootstrap"]["unit"] == "patient"


def test_per_group_values_equal_fairlearn_metricframe():
    fairlearn = pytest.importorskip("fairlearn.metrics", reason="fairlearn is a dev-only reference")
    probs, y, sex, patients = _data(seed=1)
    out = subgroup_metrics(probs, y, "multilabel", NAMES, {"sex": sex}, TH, patients, n_boot=20, min_count=5)
    for c, name in enumerate(NAMES):
        rows = np.array([s is not None for s in sex]) & ~np.isnan(
            y[:, c]
        )  # Fairlearn would make a group of None
        t = TH[c]
        frame = fairlearn.MetricFrame(
            metrics={
                "roc_auc": roc_auc_score,
                "sensitivity": lambda yt, p, t=t: recall_score(yt, p >= t),
                "fpr": lambda yt, p, t=t: fairlearn.false_positive_rate(yt, p >= t),
                "ece": lambda yt, p: expected_calibration_error(p, yt),
                "n": fairlearn.count,
            },
            y_true=y[rows, c],
            y_pred=probs[rows, c],
            sensitive_features=sex[rows].astype(str),
        )
        ours = out["attributes"]["sex"]["findings"][name]["groups"]
        assert sorted(frame.by_group.index) == sorted(ours)
        for g, row in frame.by_group.iterrows():
            assert ours[g]["n"] == row["n"]
            for m in ("roc_auc", "sensitivity", "fpr", "ece"):
                assert ours[g][m]["value"] == pytest.approx(row[m]), (name, g, m)
        gap = out["attributes"]["sex"]["findings"][name]["largest_gap"]["roc_auc"]
        assert gap["value"] == pytest.approx(frame.difference()["roc_auc"])


def test_missing_and_nan_are_never_a_group():
    probs, y, sex, _ = _data(seed=2)
    sex = sex.copy()
    sex[:20] = np.nan
    sex[20:30] = ""
    out = subgroup_metrics(probs, y, "multilabel", NAMES, {"sex": sex}, TH, n_boot=10, min_count=5)
    attr = out["attributes"]["sex"]
    assert sorted(attr["groups"]) == ["F", "M"]
    assert sorted(attr["findings"]["Mass"]["groups"]) == ["F", "M"]
    missing = sum(v is None or v == "" or (isinstance(v, float) and np.isnan(v)) for v in sex)
    assert attr["n_missing"] == missing
    assert sum(g["n_images"] for g in attr["groups"].values()) == len(sex) - missing


def test_too_few_positives_is_shown_not_scored():
    probs, y, _, _ = _data(seed=3)
    grp = np.array(["big"] * 380 + ["small"] * 20, dtype=object)
    y[380:, 0] = 0
    y[380:383, 0] = 1  # 3 positives in the small group
    out = subgroup_metrics(probs, y, "multilabel", NAMES, {"g": grp}, TH, n_boot=10, min_count=10)
    small = out["attributes"]["g"]["findings"]["Effusion"]["groups"]["small"]
    assert small["status"] == "too_few" and (small["n_pos"], small["n_neg"]) == (3, 17)
    assert all(small[m] is None for m in ("roc_auc", "sensitivity", "fpr", "ece"))
    assert (
        out["attributes"]["g"]["findings"]["Effusion"]["largest_gap"]["roc_auc"] is None
    )  # one scored group
    assert out["attributes"]["g"]["findings"]["Effusion"]["groups"]["big"]["status"] == "scored"
    assert "10 positives" in out["too_few_rule"]


def test_largest_gap_is_paired_and_flagged_when_its_interval_excludes_zero():
    rng = np.random.default_rng(4)
    n = 600
    y = (rng.random((n, 1)) < 0.5).astype(np.float32)
    grp = np.array(["good"] * 300 + ["bad"] * 300, dtype=object)
    p = np.where(grp == "good", 0.8 * y[:, 0] + 0.2 * rng.random(n), rng.random(n))[:, None]
    out = subgroup_metrics(p, y, "binary", ["Pneumonia"], {"g": grp}, [0.5], n_boot=200)
    gap = out["attributes"]["g"]["findings"]["Pneumonia"]["largest_gap"]["roc_auc"]
    assert (gap["higher"], gap["lower"]) == ("good", "bad") and gap["flagged"]
    f = out["attributes"]["g"]["findings"]["Pneumonia"]["groups"]
    assert gap["value"] == pytest.approx(f["good"]["roc_auc"]["value"] - f["bad"]["roc_auc"]["value"])
    assert gap["ci"][0] > 0


def test_underdiagnosis_definitions_by_hand():
    # multi-label: diseased = at least one known positive; called normal = every finding below threshold
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [np.nan, 1], [1, np.nan]] * 2, dtype=np.float32)
    p = np.array([[0.1, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.1], [0.9, 0.1], [0.1, 0.1]] * 2)
    grp = np.array(["a"] * 12, dtype=object)
    out = subgroup_metrics(p, y, "multilabel", NAMES, {"g": grp}, [0.5, 0.5], n_boot=10, min_count=1)
    u = out["attributes"]["g"]["underdiagnosis"]["groups"]["a"]
    # diseased rows 0,1,2,4,5 (x2): called normal 0 and 5 -> 4 of 10
    assert u["n_diseased"] == 10 and u["value"] == pytest.approx(0.4)
    # binary: 1 - sensitivity
    probs, yy, sex, _ = _data(seed=5)
    b = subgroup_metrics(
        probs[:, :1], np.nan_to_num(yy[:, :1]), "binary", ["Effusion"], {"sex": sex}, [0.4], n_boot=10
    )
    attr = b["attributes"]["sex"]
    for g in ("F", "M"):
        sens = attr["findings"]["Effusion"]["groups"][g]["sensitivity"]["value"]
        assert attr["underdiagnosis"]["groups"][g]["value"] == pytest.approx(1 - sens)


def test_age_bins_edges_and_names():
    assert age_bin_names() == ["0-20", "20-40", "40-60", "60-80", "80+"]
    assert age_bin_names([40, 60]) == ["0-40", "40-60", "60+"]
    got = age_groups([0, 19.9, 20, 45, 80, 95, np.nan], [20, 40, 60, 80])
    assert got.tolist() == ["0-20", "0-20", "20-40", "40-60", "80+", "80+", None]
    ages = np.array([3.0, 10, 30, 50, np.nan] * 30)
    out = subgroup_metrics(
        np.full((150, 1), 0.5),
        np.zeros((150, 1)),
        "binary",
        ["x"],
        {"age": age_groups(ages, [5, 20])},
        n_boot=2,
    )
    assert list(out["attributes"]["age"]["groups"]) == ["0-5", "5-20", "20+"]  # numeric, not text order
    for bad in ([60, 40], [0, 20], []):
        with pytest.raises(ValueError, match="age bin"):
            age_groups([30], bad)


def test_weighted_ece_equals_ece_on_repeated_data():
    rng = np.random.default_rng(6)
    p, y = rng.random(50), (rng.random(50) < 0.4).astype(float)
    w = rng.integers(0, 4, 50).astype(float)
    assert weighted_ece(p, y, np.ones((1, 50)))[0] == pytest.approx(expected_calibration_error(p, y))
    rep = np.repeat(np.arange(50), w.astype(int))
    assert weighted_ece(p, y, w[None])[0] == pytest.approx(expected_calibration_error(p[rep], y[rep]))

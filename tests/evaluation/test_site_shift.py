"""Site shift: internal vs external AUROC per shared finding equals scikit-learn, the p is the
unpaired DeLong's, labels that differ still meet by name through the CLI, and a full external
evaluation gains a ``site_shift`` entry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from tiny_runs import write_tiny_cache, write_tiny_run

from chestxai.cli import main
from chestxai.evaluation.site_shift import SiteScores, compare_sites, format_table
from chestxai.metrics.delong import delong_unpaired


def _side(rng, n, signal, names, labels=None, patients=None):
    y = (rng.random(n) < 0.4).astype(float) if labels is None else labels
    first = y if y.ndim == 1 else y[:, 0]
    probs = 1 / (1 + np.exp(-(signal * np.nan_to_num(first) + rng.normal(0, 1, n))))
    labels = y.reshape(n, -1)
    ids = np.array(patients if patients is not None else [f"p{i // 2}" for i in range(n)])
    return SiteScores(probs.reshape(n, 1), labels, names, ids, "cache", "test", "multilabel")


def test_compare_sites_equals_sklearn_and_unpaired_delong():
    rng = np.random.default_rng(0)
    internal = _side(rng, 200, 2.0, ["Pneumonia"])
    y_ext = (rng.random((150, 2)) < 0.3).astype(float)
    y_ext[:5] = np.nan  # unknown rows are dropped
    external = _side(rng, 150, 0.5, ["SARS", "ARDS"], labels=y_ext)
    entry = compare_sites(internal, external, ["Pneumonia"], n_boot=200, seed=1)
    e = entry["findings"]["Pneumonia"]
    assert e["data_labels"] == ["SARS"] and e["how"] == "kind"
    assert entry["labels"]["data_only"] == ["ARDS"]
    yi, si = internal.labels[:, 0], internal.probs[:, 0]
    ye, se = y_ext[5:, 0], external.probs[5:, 0]
    assert e["internal"]["roc_auc"]["value"] == pytest.approx(roc_auc_score(yi, si))
    assert e["external"]["roc_auc"]["value"] == pytest.approx(roc_auc_score(ye, se))
    assert e["external"]["n"] == 145 and e["internal"]["n_patients"] == 100
    ref = delong_unpaired(yi, si, ye, se)
    assert e["delong_p"] == pytest.approx(ref.p_value) and e["difference"]["value"] == pytest.approx(ref.diff)
    lo, hi = e["difference"]["ci"]
    assert lo < e["difference"]["value"] < hi and e["difference"]["value"] > 0
    for side in ("internal", "external"):
        lo, hi = e[side]["roc_auc"]["ci"]
        assert lo < e[side]["roc_auc"]["value"] < hi
    assert entry["bootstrap"]["unit"] == {"internal": "patient", "external": "patient"}
    assert "Pneumonia" in format_table(entry)


def test_too_few_positives_are_listed_not_scored():
    rng = np.random.default_rng(1)
    internal = _side(rng, 60, 2.0, ["Pneumonia"])
    y = np.zeros((30, 1))
    y[0] = 1  # one positive: AUROC undefined
    e = compare_sites(internal, _side(rng, 30, 1.0, ["Pneumonia"], labels=y), ["Pneumonia"], n_boot=50)
    f = e["findings"]["Pneumonia"]
    assert f["external"]["roc_auc"]["value"] is None and f["delong_p"] is None and f["small_n"]
    assert "n/a" in format_table(e)


@pytest.fixture
def pneumonia_run(tmp_path):
    return write_tiny_run(tmp_path, "binary", 1, n=48, label_names=["Pneumonia"])


def _covid_like(tmp_path, n=24):
    rng = np.random.default_rng(2)
    labels = np.zeros((n, 2), np.float32)
    labels[: n // 2, 0] = 1  # COVID-19 (a kind of pneumonia)
    labels[n // 2 : n // 2 + 4, 1] = 1  # ARDS only: no pneumonia
    return write_tiny_cache(
        tmp_path / "covid", rng.integers(0, 255, (n, 32, 32)), labels, ["COVID-19", "ARDS"], "multilabel",
        patient_id=[f"c{i // 2}" for i in range(n)],
    )  # fmt: skip


def test_cli_other_labels_score_the_shared_findings_only(pneumonia_run, tmp_path, capsys):
    run, _ = pneumonia_run
    covid = _covid_like(tmp_path)
    out = tmp_path / "site"
    assert main(["evaluate", str(run), "--data", str(covid), "--out", str(out), "--n-boot", "20"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    s = m["site_shift"]
    assert s["labels"]["shared"] == {"Pneumonia": ["COVID-19"]} and s["labels"]["data_only"] == ["ARDS"]
    f = s["findings"]["Pneumonia"]
    assert f["external"]["n"] == 24 and f["external"]["n_pos"] == 12 and f["external"]["n_patients"] == 12
    assert f["internal"]["n"] == 24  # the run's test split (rows 2, 3 of every 4)
    assert (
        s["external"]["rows_from"].startswith("every image")
        or "no split column" in s["external"]["rows_from"]
    )
    assert "site_probe" not in m and "metrics" not in m  # only the shared findings were scored
    assert "site shift" in capsys.readouterr().out
    # --out is still required, and never overwritten
    assert main(["evaluate", str(run), "--data", str(covid), "--n-boot", "20"]) == 2
    assert main(["evaluate", str(run), "--data", str(covid), "--out", str(out), "--n-boot", "20"]) == 2


def test_cli_same_labels_keep_the_full_evaluation_and_add_site_shift(pneumonia_run, tmp_path):
    run, _ = pneumonia_run
    rng = np.random.default_rng(3)
    other = write_tiny_cache(
        tmp_path / "other", rng.integers(0, 255, (20, 32, 32)), (rng.random((20, 1)) < 0.5).astype(np.float32),
        ["Pneumonia"], "binary",
    )  # fmt: skip
    out = tmp_path / "ext"
    assert (
        main(
            ["evaluate", str(run), "--data", str(other), "--out", str(out), "--n-boot", "20", "--no-figures"]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    assert "metrics" in m and m["site_shift"]["findings"]["Pneumonia"]["how"] == "name"
    assert m["site_shift"]["findings"]["Pneumonia"]["external"]["n"] == 20
    assert m["metrics"]["per_class"]["Pneumonia"]["roc_auc"]["value"] == pytest.approx(
        m["site_shift"]["findings"]["Pneumonia"]["external"]["roc_auc"]["value"]
    )


def test_cli_dataset_probe_needs_data(pneumonia_run):
    run, _ = pneumonia_run
    assert main(["evaluate", str(run), "--site-probe", "--n-boot", "10", "--no-figures"]) == 2

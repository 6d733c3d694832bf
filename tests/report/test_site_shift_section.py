"""The report's Site shift section: the table of a site-only external evaluation, the probe
warning at AUROC >= 0.9, and a report built from a metrics.json that holds only site entries."""

from __future__ import annotations

import json

import numpy as np

from chestxai.evaluation.site_probe import verdict
from chestxai.evaluation.site_shift import SiteScores, compare_sites
from chestxai.report.build import build_report
from chestxai.report.site_shift import site_shift_section


def _entries():
    rng = np.random.default_rng(0)

    def side(n, names, labels):
        probs = rng.random((n, 1))
        return SiteScores(
            probs, labels, names, np.array([f"p{i}" for i in range(n)]), "c", "test", "multilabel"
        )

    internal = side(40, ["Pneumonia"], (rng.random((40, 1)) < 0.5).astype(float))
    external = side(30, ["SARS", "ARDS"], (rng.random((30, 2)) < 0.5).astype(float))
    shift = compare_sites(internal, external, ["Pneumonia", "Edema"], n_boot=20)
    probe = verdict({"probe": "dataset", "classes": ["nih", "covid"], "roc_auc": {"value": 0.97, "ci": [0.95, 0.99]},
                     "n": 70, "n_per_class": [40, 30], "n_patients": 70, "folds": 5}, "dataset")  # fmt: skip
    return {"site_shift": shift, "site_probe": probe}


def test_section_lists_findings_probe_and_warning():
    html = site_shift_section(_entries())
    assert "Pneumonia" in html and "SARS (kind)" in html and "Not in the external data: Edema" in html
    assert "ARDS" in html and "0.970 [0.950, 0.990]" in html and "Warning:" in html
    quiet = _entries()
    quiet["site_probe"] = verdict(
        {**quiet["site_probe"], "roc_auc": {"value": 0.6, "ci": [0.5, 0.7]}}, "dataset"
    )
    assert "Warning:" not in site_shift_section(quiet)


def test_report_of_a_site_only_evaluation(tmp_path):
    out = tmp_path / "external"
    out.mkdir()
    metrics = {"run": "runs/x", "split": "test", "cache": str(tmp_path / "gone"), "label_names": ["Pneumonia"],
               "scored": "site_shift only", **_entries()}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics))
    html = build_report(out).read_text()
    assert 'id="site-shift"' in html and "Scored: site_shift only" in html and "Warning:" in html


def test_the_table_fits_one_block():
    from chestxai.report.html import MAX_COLUMNS

    html = site_shift_section(_entries())
    assert "part 1 of" not in html and html.count("<th>") <= MAX_COLUMNS + 6  # shift table + probe table

"""The comparison report: OUT.html with runs, metrics, cost and the four comparison figures,
self-contained, refusing to replace files it did not write, and rendering in headless Chromium."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from chestxai.evaluation import compare_runs, cost, evaluate_run
from chestxai.metrics.compare_plots import FIGURES, RunCurves, write_compare_figures
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, read_checkpoint, save_atomic
from chestxai.report.compare import compare_and_report, write_compare_report
from chestxai.testing import write_tiny_run


def _fixed_speed(predict, size, device, settings=None):
    """The real predict path once, fixed numbers back (the timing is tested in test_cost.py)."""
    predict(np.zeros((1, size, size), np.uint8), batch_size=1, device=device)
    return {str(b): {"images_per_s": 50.0 * b, "latency_ms": 20.0, "repeats": 1} for b in (1, 32)}


@pytest.fixture(autouse=True)
def fixed_speed(monkeypatch):
    monkeypatch.setattr(cost, "measure_speed", _fixed_speed)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two evaluated multi-label runs on the same cache: the tiny run and a reseeded copy."""
    root = tmp_path_factory.mktemp("compare-report")
    a, _ = write_tiny_run(root / "first", "multilabel", 3, n=48, size=16)
    b = root / "second"
    shutil.copytree(a, b)
    ckpt = read_checkpoint(b / "checkpoint.pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = create_model("resnet18", num_labels=3, task="multilabel", input_size=16)
    save_atomic(
        make_checkpoint(model, ckpt["label_names"], ckpt["preprocess"], ckpt["config"]), b / "checkpoint.pt"
    )
    for run in (a, b):
        evaluate_run(run, n_boot=30, figures=False)
    return a, b


@pytest.fixture(scope="module")
def report(two_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "cmp"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cost, "measure_speed", _fixed_speed)
        comparison = compare_and_report(list(two_runs), out, n_boot=50, title="tiny comparison")
    return comparison, out


def test_report_holds_runs_metrics_cost_and_figures(report):
    comparison, out = report
    html = comparison.report.read_text()
    assert comparison.report == out.parent / "cmp.html"
    assert "<title>tiny comparison</title>" in html and "not for clinical use" in html
    for anchor in ("runs", "metrics", "cost", "per-class", "figures"):
        assert f'id="{anchor}"' in html
    for column in ("params", "train_time_s", "train_images_per_s", "peak_memory_mb", "checkpoint_mb"):
        assert f"<th>{column}</th>" in html
    assert "<th>infer_images_per_s_b1</th>" in html and "<th>infer_images_per_s_b32</th>" in html
    assert "1,600.0" in html  # infer_images_per_s_b32 of the fixed measurement, formatted
    assert "<td>run</td>" in html and "<td>second</td>" in html
    assert html.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert "http://" not in html and "https://" not in html  # self-contained
    names = {p.name for p in comparison.paths}
    assert {"cmp.md", "cmp.csv", "cmp_per_class.csv", "cmp.html"} <= names
    assert {f"cmp_{k}.png" for k in FIGURES} <= names and all(p.exists() for p in comparison.paths)


def test_existing_report_is_refused_without_force(two_runs, tmp_path):
    mine = tmp_path / "cmp.html"
    mine.write_text("my page")
    with pytest.raises(FileExistsError, match="--force"):
        compare_and_report(list(two_runs), tmp_path / "cmp", n_boot=20, speed=False)
    assert mine.read_text() == "my page" and not (tmp_path / "cmp.md").exists()
    compare_and_report(list(two_runs), tmp_path / "cmp", n_boot=20, speed=False, force=True)
    assert "chestxai comparison: run vs second" in mine.read_text()


def test_a_comparison_without_out_gets_its_figures_next_to_the_page(two_runs, tmp_path):
    comparison = compare_runs(list(two_runs), n_boot=20, speed=False)
    assert comparison.paths == [] and comparison.figures == {}
    path = write_compare_report(comparison, tmp_path / "page.html")
    assert all((tmp_path / f"page_{k}.png").exists() for k in FIGURES)
    assert "not measured (--no-speed)" in path.read_text()
    with pytest.raises(ValueError, match="path"):
        write_compare_report(compare_runs(list(two_runs), n_boot=20, speed=False))


@pytest.mark.parametrize("task, n_labels", [("binary", 1), ("multiclass", 3), ("multilabel", 4)])
def test_figures_are_drawn_for_every_task(task, n_labels, tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    if task == "multiclass":
        targets = np.eye(n_labels)[rng.integers(0, n_labels, n)]
        runs = [rng.dirichlet(np.ones(n_labels), n) for _ in range(2)]
    else:
        targets = (rng.random((n, n_labels)) < 0.4).astype(float)
        if task == "multilabel":
            targets[:, -1] = 0.0  # a finding without positives: its panels say so
            targets[:5, 0] = np.nan  # unknown labels are masked
        runs = [np.clip(targets * 0.5 + rng.random((n, n_labels)) * 0.5, 0, 1) for _ in range(2)]
    names = [f"c{i}" for i in range(n_labels)]
    th = None if task == "multiclass" else dict.fromkeys(names, 0.5)
    bars = {"roc_auc": {"value": 0.8, "ci": [0.7, 0.9]}, "accuracy": {"value": 0.7, "ci": None}}
    curves = [RunCurves(f"r{i}", np.nan_to_num(p, nan=0.5), targets, th, bars) for i, p in enumerate(runs)]
    written = write_compare_figures(tmp_path / "x", curves, task, names)
    assert list(written) == list(FIGURES)
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_report_renders_in_headless_chromium(report, browser):
    comparison, _ = report
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    page.goto(comparison.report.resolve().as_uri(), wait_until="load")
    assert page.title() == "tiny comparison"
    cost_rows = page.locator("#cost table:first-of-type tbody tr")  # a wide table comes in parts
    assert cost_rows.count() == 2
    assert cost_rows.nth(1).locator("td").first.inner_text() == "second"
    assert page.locator("#metrics table:first-of-type tbody tr").count() == 2
    images = page.evaluate(
        "Array.from(document.images).map(i => ({alt: i.alt, w: i.naturalWidth, done: i.complete}))"
    )
    assert sorted(i["alt"] for i in images) == sorted(FIGURES)
    broken = [i["alt"] for i in images if not (i["done"] and i["w"] > 0)]
    assert not broken, f"images that did not render: {broken}"
    assert errors == []
    assert "not for clinical use" in page.inner_text("body")
    page.close()

"""The report's Uncertainty section renders in headless Chromium with every image loaded.

Needs ``playwright`` and Debian's ``chromium``; skipped with a reason otherwise (as
``tests/report/test_report_browser.py``)."""

from __future__ import annotations

import pytest

from chestxai.evaluation import evaluate_run
from chestxai.report import build_report
from chestxai.uncertainty.stage import uncertainty_run

from .conftest import tiny_dropout_run


@pytest.fixture(scope="module")
def uncertain_run(tmp_path_factory):
    run, _ = tiny_dropout_run(tmp_path_factory.mktemp("unc-report") / "a")
    evaluate_run(run, n_boot=20)
    uncertainty_run(run, passes=4, n_boot=30, n_gallery=2)
    uncertainty_run(run, method="tta", passes=3, n_boot=30, n_gallery=2)
    return run


def test_the_section_is_built_from_the_stage_outputs(uncertain_run):
    text = build_report(uncertain_run).read_text()
    assert 'id="uncertainty"' in text and "Most uncertain cases" in text and "Confident errors" in text
    assert "mc-dropout" in text and "tta" in text and "AURC" in text


@pytest.mark.slow
def test_uncertainty_section_renders_every_image(uncertain_run, browser):
    path = build_report(uncertain_run)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.resolve().as_uri(), wait_until="load")
    images = page.evaluate(
        "Array.from(document.querySelectorAll('#uncertainty img'))"
        ".map(i => ({alt: i.alt, w: i.naturalWidth, done: i.complete}))"
    )
    # per method: 4 figures + 4 gallery heatmaps (2 most uncertain + 2 confident errors at most)
    assert len(images) >= 2 * 4 + 2
    broken = [i["alt"] for i in images if not (i["done"] and i["w"] > 0)]
    assert not broken, f"images that did not render: {broken}"
    assert errors == []
    assert "Referral" in page.inner_text("#uncertainty")
    page.close()

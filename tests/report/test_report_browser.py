"""report.html opens in headless Chromium without errors and every image renders.

Needs the ``playwright`` Python package and Debian's ``chromium`` (``apt-get install -y chromium``);
skipped with a reason otherwise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chestxai.report import build_report

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (in the [dev] extra)"
    )
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not executable:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=ARGS)
        yield b
        b.close()


@pytest.mark.slow
def test_report_renders_every_image_without_console_errors(evaluated_run, browser):
    run, _ = evaluated_run
    path = build_report(run)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    page.goto(path.resolve().as_uri(), wait_until="load")
    images = page.evaluate(
        "Array.from(document.images).map(i => ({alt: i.alt, w: i.naturalWidth, done: i.complete}))"
    )
    assert len(images) == path.read_text().count("<img ") >= 7 + 8  # figures + heatmap overlays
    broken = [i["alt"] for i in images if not (i["done"] and i["w"] > 0)]
    assert not broken, f"images that did not render: {broken}"
    assert errors == []
    assert "not for clinical use" in page.inner_text("body")
    page.close()

"""The web viewer as a person uses it, in headless Debian chromium (Playwright): upload a real NIH
PNG and the real DICOM, see the probability table and a heatmap that loaded, move the opacity
slider, pick another label, see a clear message for a broken file.

The screenshot is a test artefact: ``$CHESTXAI_TEST_ARTEFACTS/viewer.png`` when that variable is
set, else under the test's ``tmp_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_helpers import LABELS, dicoms, nih_images, serve_in_thread


@pytest.fixture(scope="module")
def service(run_dir):
    """uvicorn serving the app on a free loopback port, in a thread of this process."""
    pytest.importorskip("uvicorn", reason="pip install 'chestxai[serve]'")
    from chestxai.serve.app import create_app
    from chestxai.serve.models import load_all

    with serve_in_thread(create_app(load_all([run_dir]))) as url:
        yield url


def heatmap_loaded(page) -> bool:
    return page.evaluate(
        "() => { const h = document.getElementById('heatmap');"
        " return !h.hidden && h.complete && h.naturalWidth > 0; }"
    )


@pytest.mark.slow
@pytest.mark.realdata
def test_viewer_upload_table_heatmap_slider_label_and_errors(service, browser, shared_data, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    page.goto(service, wait_until="load")
    assert "not for clinical use" in page.inner_text("#disclaimer").lower()
    page.wait_for_function("document.querySelectorAll('#label option').length > 1")

    # a real NIH PNG: probability table + a heatmap image that actually loaded
    page.set_input_files("#file", str(nih_images(shared_data, 1)[0]))
    page.wait_for_function("document.querySelectorAll('#probs tbody tr').length > 0", timeout=60_000)
    rows = page.locator("#probs tbody tr")
    assert rows.count() == len(LABELS)
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == LABELS
    page.wait_for_function(
        "() => { const h = document.getElementById('heatmap'); return h.complete && h.naturalWidth > 0; }"
    )
    assert heatmap_loaded(page)
    assert page.evaluate("document.getElementById('image').naturalWidth") == 512

    # the opacity slider changes the heatmap's opacity
    page.locator("#opacity").fill("0.8")
    assert page.evaluate("getComputedStyle(document.getElementById('heatmap')).opacity") == "0.8"

    # another label: the heatmap is recomputed for it
    page.select_option("#label", "Effusion")
    page.wait_for_function(
        "document.getElementById('caption').textContent.includes('Effusion')", timeout=60_000
    )
    assert heatmap_loaded(page)
    assert page.evaluate("getComputedStyle(document.getElementById('heatmap')).opacity") == "0.8"

    # the real DICOM (1024 px, JPEG-compressed): shown (the browser cannot read DICOM itself) and scored
    dcm = dicoms(shared_data)[0]
    page.set_input_files("#file", str(dcm))
    page.wait_for_function(
        "document.getElementById('caption').textContent.includes('Effusion') && "
        "document.getElementById('image').naturalWidth === 512 && !document.getElementById('status').textContent",
        timeout=60_000,
    )
    assert heatmap_loaded(page) and page.locator("#probs tbody tr").count() == len(LABELS)
    assert page.locator("#error").is_hidden()
    folder = Path(os.environ.get("CHESTXAI_TEST_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    shot = page.screenshot(path=str(folder / "viewer.png"), full_page=True)
    assert len(shot) > 10_000

    # a broken file: a clear message, and the page still works
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an X-ray")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "notes.png could not be analysed" in page.inner_text("#error")
    assert "PNG, JPEG or DICOM" in page.inner_text("#error")
    assert errors == []
    page.close()

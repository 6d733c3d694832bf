"""The viewer's issue-20 promises in headless Debian chromium (Playwright), on a tiny untrained run
and synthetic PNGs: an empty page without broken images, the file name with the result, a bad
upload that clears the previous result, a colour bar, window/level and zoom that change the
picture, a ground-truth box, the model card with its intervals, and ``/docs`` with no request
leaving the service."""

from __future__ import annotations

import numpy as np
import pytest
from serve_helpers import serve_in_thread, write_png

from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import write_json

pytestmark = pytest.mark.slow  # a browser

ROWS, COLS = 300, 240


@pytest.fixture(scope="module")
def service(run_dir):
    pytest.importorskip("uvicorn", reason="pip install 'chestxai[serve]'")
    from chestxai.serve.app import create_app
    from chestxai.serve.models import load_all

    metrics = {
        "split": "test",
        "n_images": 7,
        "bootstrap": {"level": 0.95},
        "metrics": {"macro": {"roc_auc": {"value": 0.71, "ci": [0.6, 0.8]}}, "per_class": {}},
    }
    write_json(metrics, RunDir(run_dir).metrics)
    with serve_in_thread(create_app(load_all([run_dir]))) as url:
        yield url


@pytest.fixture
def page(service, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.set_default_timeout(20_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(service, wait_until="load")
    page.wait_for_function("document.querySelectorAll('#label option').length > 1")
    yield page
    page.close()


@pytest.fixture(scope="module")
def xray(tmp_path_factory):
    rng = np.random.default_rng(0)
    return write_png(
        tmp_path_factory.mktemp("viewer") / "chest.png", rng.integers(0, 255, (ROWS, COLS), np.uint8)
    )


def upload(page, path) -> None:
    page.set_input_files("#file", str(path))
    page.wait_for_function(
        "document.querySelectorAll('#probs tbody tr').length > 0 && !document.getElementById('status').textContent"
        " && document.getElementById('image').complete && document.getElementById('image').naturalWidth > 0",
        timeout=60_000,
    )


BROKEN = (
    "() => [...document.images].filter(i => i.getClientRects().length > 0"
    " && !(i.complete && i.naturalWidth > 0)).map(i => i.id)"
)


def test_empty_page_shows_no_broken_images(page):
    assert page.evaluate(BROKEN) == []
    assert page.locator("#result").is_hidden()


def test_result_names_the_file_and_a_bad_upload_clears_it(page, xray, tmp_path):
    upload(page, xray)
    assert "chest.png" in page.inner_text("#file-name") and f"{COLS} x {ROWS}" in page.inner_text(
        "#file-name"
    )
    assert page.locator("#colorbar").is_visible() and "0 (blue) to 1 (red)" in page.inner_text("#colorbar")
    assert page.evaluate(BROKEN) == []
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an X-ray")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "notes.png could not be analysed" in page.inner_text("#error")
    # the previous image's heatmap and probabilities are gone, not left under the error
    assert page.locator("#result").is_hidden() and page.locator("#heatmap").is_hidden()
    assert page.locator("#probs tbody tr").count() == 0 and page.inner_text("#file-name") == ""
    assert page.evaluate(BROKEN) == []
    assert page.errors == []


def test_window_level_zoom_and_ground_truth_box(page, xray):
    page.select_option("#method", "")  # the image alone: window/level acts on it
    upload(page, xray)
    before = page.locator("#image").screenshot()
    page.locator("#window").fill("60")
    page.locator("#level").fill("200")
    page.wait_for_timeout(200)
    assert page.locator("#image").screenshot() != before, "window/level did not change the picture"
    page.locator("#zoom").fill("2")
    assert "scale(2)" in page.evaluate("document.getElementById('frame').style.transform")
    page.click("#reset-view")
    assert "scale(1)" in page.evaluate("document.getElementById('frame').style.transform")
    page.fill("#gt", f"0,0,{COLS // 2},{ROWS // 2}")
    assert page.locator("#gt-box").is_visible()
    assert page.evaluate("document.getElementById('gt-box').style.width") == "50%"
    page.fill("#gt", "1,2,3")
    assert page.locator("#gt-box").is_hidden() and "x,y,w,h" in page.inner_text("#gt-error")
    assert page.errors == []


def test_model_card_shows_test_metrics_with_intervals_and_intended_use(page):
    page.wait_for_selector("#card:not([hidden])")
    text = page.inner_text("#card")
    assert "roc_auc" in text and "0.710" in text and "95% CI 0.600 – 0.800" in text
    assert "input 32 x 32 px" in text and "7 images" in text
    assert "not for clinical use" in text.lower()


def test_docs_render_offline_with_no_external_request(service, browser):
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(service + "docs", wait_until="load")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "chestxai" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_function("document.body.innerText.includes('/v1/predict')")
    outside = [u for u in requests if not u.startswith(service) and not u.startswith("data:")]
    assert outside == []
    page.close()

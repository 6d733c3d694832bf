"""Issue 20 items 4-6 through the API: which finding is explained by default (a positive one),
which pixels the boxes are in (the original image's, named; the model grid on request), the raw
heatmap values, the model card and an offline ``/docs``."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from serve_helpers import LABELS, LOCAL

pytest.importorskip("fastapi", reason="pip install 'chestxai[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from chestxai.rundir.jsonfile import write_json  # noqa: E402
from chestxai.serve.app import create_app  # noqa: E402
from chestxai.serve.models import load_all  # noqa: E402

TOP_POSITIVE, TOP_NEGATIVE = "top positive finding", "top score, no positive finding"  # selected_by
ROWS, COLS = 300, 240  # not square, not the cache size (48) nor the input size (32)


@pytest.fixture(scope="module")
def png_bytes():
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".png", rng.integers(0, 255, (ROWS, COLS), dtype=np.uint8))
    return buf.tobytes()


@pytest.fixture(scope="module")
def models(run_dir):
    return load_all([run_dir])


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(models), base_url=LOCAL) as c:
        yield c


def post(client, query: str, png: bytes):
    r = client.post(f"/v1/predict?{query}", files={"file": ("chest.png", png, "image/png")})
    assert r.status_code == 200, r.text
    return r.json()


def set_thresholds(served, values: dict[str, float]) -> None:
    served.thresholds = dataclasses.replace(served.thresholds, values=values)


def test_choose_target_prefers_the_top_positive_finding_over_a_higher_negative_one():
    from chestxai.explain.choice import choose_target

    # issue 20's case: Nodule 0.523 under its 0.527 threshold, Atelectasis the one positive
    names = ["Atelectasis", "Nodule", "Mass"]
    t = choose_target(names, np.array([0.31, 0.523, 0.1]), np.array([1, 0, 0]))
    assert (t.name, t.positive, t.selected_by, t.note) == ("Atelectasis", True, TOP_POSITIVE, None)
    t = choose_target(names, np.array([0.31, 0.523, 0.1]), np.array([0, 0, 0]))
    assert (t.name, t.positive, t.selected_by) == ("Nodule", False, TOP_NEGATIVE)
    assert "no finding is positive" in t.note and "negative" in t.note
    t = choose_target(names, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 1]))
    assert t.name == "Nodule"  # the highest-probability *positive* one
    t = choose_target(names, np.array([0.9, 0.8, 0.7]), np.array([1, 1, 1]), requested="Mass")
    assert (t.name, t.selected_by) == ("Mass", "requested")


def test_api_explains_the_positive_finding_not_the_top_negative_one(client, models, png_bytes):
    served = models["run"]
    probs = {lab["name"]: lab["probability"] for lab in post(client, "", png_bytes)["labels"]}
    top, low = max(probs, key=probs.get), min(probs, key=probs.get)
    original = served.thresholds
    try:
        # the top-scoring finding is just under its threshold; the lowest-scoring one is positive
        values = {n: min(1.0, p + 1e-3) for n, p in probs.items()}
        values[low] = probs[low] / 2
        set_thresholds(served, values)
        body = post(client, "explain=gradcam", png_bytes)
        decided = {lab["name"]: lab["decision"] for lab in body["labels"]}
        assert decided[low] and not decided[top]
        ex = body["explanation"]
        assert ex["label"] == low, f"explained {ex['label']}, which the model decided negative"
        assert (ex["label"], ex["positive"], ex["selected_by"], ex["note"]) == (low, True, TOP_POSITIVE, None)
        # nothing positive: the top finding is shown and the answer says it is negative
        set_thresholds(served, {n: 1.0 for n in probs})
        ex = post(client, "explain=gradcam", png_bytes)["explanation"]
        assert (ex["label"], ex["positive"], ex["selected_by"]) == (top, False, TOP_NEGATIVE)
        assert "no finding is positive" in ex["note"]
    finally:
        served.thresholds = original


def test_api_boxes_are_in_original_pixels_by_default_and_the_model_grid_on_request(client, png_bytes):
    ex = post(client, "explain=gradcam&label=Mass", png_bytes)["explanation"]
    assert ex["space"] == "original" and ex["space_size"] == [COLS, ROWS]
    assert ex["boxes"], "a gradcam map of a random image has a hot region"
    for b in ex["boxes"]:
        assert b["x"] >= 0 and b["x"] + b["w"] <= COLS and b["y"] >= 0 and b["y"] + b["h"] <= ROWS
        assert b["fraction"] == pytest.approx([b["x"] / COLS, b["y"] / ROWS, b["w"] / COLS, b["h"] / ROWS])
    assert ex["values"] is None and ex["values_size"] == [32, 32]
    lo, hi = ex["value_range"]
    assert 0.0 <= lo <= hi <= 1.0 and ex["colormap"] == "jet"

    model = post(client, "explain=gradcam&label=Mass&space=model&values=true", png_bytes)["explanation"]
    assert model["space"] == "model" and model["space_size"] == [32, 32]
    for b in model["boxes"]:
        assert b["x"] + b["w"] <= 32 and b["y"] + b["h"] <= 32
    raw = np.array(model["values"])
    assert raw.shape == (32, 32) and raw.min() == pytest.approx(lo, abs=1e-5)
    assert raw.max() == pytest.approx(hi, abs=1e-5)
    # the boxes of the two spaces are the same regions: the original's, scaled to the model grid,
    # cover the model grid's hottest box
    big, small = ex["boxes"][0]["fraction"], model["boxes"][0]["fraction"]
    assert big == pytest.approx(small, abs=2 / 32 + 1e-6)


def test_api_refuses_an_unknown_space(client, png_bytes):
    r = client.post("/v1/predict?explain=gradcam&space=display", files={"file": ("a.png", png_bytes)})
    assert r.status_code == 422 and "original, model" in r.json()["detail"]


def test_model_card_reads_the_runs_metrics_with_intervals(client, models):
    served = models["run"]
    card = client.get("/v1/models/run/card").json()
    assert card["evaluated"] is False and "chestxai evaluate" in card["note"]
    assert card["input_size"] == 32 and card["labels"] == LABELS
    assert "not for clinical use" in card["intended_use"].lower()
    metrics = {
        "split": "test",
        "n_images": 7,
        "bootstrap": {"level": 0.95},
        "metrics": {
            "macro": {"roc_auc": {"value": 0.71, "ci": [0.6, 0.8]}},
            "overall": {"accuracy": {"value": 0.5, "ci": [0.3, 0.7]}},
            "per_class": {n: {"roc_auc": {"value": 0.7, "ci": [0.5, 0.9]}} for n in LABELS},
        },
    }
    write_json(metrics, served.run.metrics)
    try:
        card = client.get("/v1/models/run/card").json()
    finally:
        served.run.metrics.unlink()
    assert card["evaluated"] and card["n_images"] == 7 and card["ci_level"] == 0.95
    assert card["metrics"]["roc_auc"] == {"value": 0.71, "ci_low": 0.6, "ci_high": 0.8}
    assert card["metrics"]["accuracy"]["ci_high"] == 0.7
    assert set(card["per_class_roc_auc"]) == set(LABELS)
    assert client.get("/v1/models/nope/card").status_code == 404


def test_docs_page_loads_swagger_from_the_service_not_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert client.get(f"/docs-assets/{asset}").status_code == 200, asset


def test_explain_command_default_target_is_the_top_positive_finding(run_dir, monkeypatch):
    """`chestxai explain` without --finding and without ground truth: the same choice."""
    from chestxai.explain.run import _top_outputs
    from chestxai.models.trained_run import TrainedRun
    from chestxai.serve.models import load_served

    trained = TrainedRun.open(run_dir, "cpu")
    images = [np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)]
    probs = load_served(run_dir).forward(np.stack(images))[0]
    names = trained.label_names
    top, low = names[int(np.argmax(probs))], names[int(np.argmin(probs))]
    values = {n: min(1.0, float(p) + 1e-3) for n, p in zip(names, probs, strict=True)}
    values[low] = 0.0
    base = trained.operating_thresholds()
    monkeypatch.setattr(
        type(trained), "operating_thresholds", lambda self: dataclasses.replace(base, values=values)
    )
    assert names[_top_outputs(trained, 4)(images)[0]] == low != top

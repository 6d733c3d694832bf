"""The HTTP API through FastAPI's TestClient: every endpoint, every refusal, and that the service
keeps answering after each bad request."""

from __future__ import annotations

import os
import resource
import shutil
import stat
import threading

import cv2
import numpy as np
import pytest
from serve_helpers import LABELS, LOCAL, png_bomb, write_png

pytest.importorskip("fastapi", reason="pip install 'chestxai[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from chestxai.serve.app import create_app  # noqa: E402
from chestxai.serve.limits import Limits  # noqa: E402
from chestxai.serve.models import load_all  # noqa: E402


@pytest.fixture(scope="module")
def png_bytes():
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".png", rng.integers(0, 255, (300, 240), dtype=np.uint8))
    return buf.tobytes()


@pytest.fixture(scope="module")
def client(run_dir, dropout_run):
    app = create_app(load_all([run_dir, dropout_run]), Limits(max_upload_bytes=200_000, max_pixels=4_000_000))
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def still_up(client, png: bytes) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.post("/v1/predict", files={"file": ("ok.png", png, "image/png")})
    assert r.status_code == 200, r.text


def test_health_models_docs_and_viewer(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["models"] == ["run", "mc"]
    models = client.get("/v1/models").json()
    assert [m["name"] for m in models["models"]] == ["run", "mc"]
    first = models["models"][0]
    assert first["labels"] == LABELS and first["resize_to"] == 48 and first["input_size"] == 32
    assert first["uncertainty"] == ["tta"] and models["models"][1]["uncertainty"] == ["mc-dropout", "tta"]
    assert "gradcam" in models["explain_methods"] and "not for clinical use" in models["disclaimer"]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/models", "/healthz"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and "not for clinical use" in page.text
    assert '<script src="viewer.js">' in page.text and "https://" not in page.text  # no CDN
    assert client.get("/viewer.js").status_code == 200 and client.get("/viewer.css").status_code == 200


def test_openapi_names_the_response_schemas_and_answers_hold_their_keys(client, png_bytes):
    """Typed answers on /docs: each endpoint's 200 is its schema (serve/schemas.py), every refusal
    ErrorDetail; and an answer holds the keys its schema declares, in order (image and image_size
    only when display=true)."""
    spec = client.get("/openapi.json").json()

    def schema(path: str, method: str, status: str) -> str:
        content = spec["paths"][path][method]["responses"][status]["content"]
        return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    assert schema("/healthz", "get", "200") == "Health" and schema("/v1/models", "get", "200") == "Models"
    assert schema("/v1/predict", "post", "200") == "Prediction"
    assert {schema("/v1/predict", "post", s) for s in ("400", "404", "413", "415", "503", "504")} == {
        "ErrorDetail"
    }
    schemas = spec["components"]["schemas"]
    assert {"ModelInfo", "FileInfo", "LabelAnswer", "Explanation", "Box", "Uncertainty"} <= set(schemas)
    declared = {name: list(schemas[name]["properties"]) for name in schemas if "properties" in schemas[name]}
    assert list(client.get("/healthz").json()) == declared["Health"]
    models = client.get("/v1/models").json()
    assert list(models) == declared["Models"] and list(models["models"][0]) == declared["ModelInfo"]
    plain = client.post("/v1/predict", files={"file": ("a.png", png_bytes, "image/png")}).json()
    assert list(plain) == [k for k in declared["Prediction"] if k not in ("image", "image_size")]
    assert plain["explanation"] is None and plain["uncertainty"] is None
    shown = client.post(
        "/v1/predict?display=true&explain=gradcam&uncertainty=tta&passes=2",
        files={"file": ("a.png", png_bytes, "image/png")},
    ).json()
    assert list(shown) == declared["Prediction"] and list(shown["explanation"]) == declared["Explanation"]
    assert list(shown["uncertainty"]) == declared["Uncertainty"]
    assert all(list(box) == declared["Box"] for box in shown["explanation"]["boxes"])


def test_predict_gives_probabilities_decisions_heatmap_and_boxes(client, png_bytes, run_dir):
    from chestxai.serve.models import load_served

    r = client.post(
        "/v1/predict?explain=gradcam&label=Mass&display=true",
        files={"file": ("xray.png", png_bytes, "image/png")},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "run" and [lab["name"] for lab in body["labels"]] == LABELS
    for lab in body["labels"]:
        assert 0 <= lab["probability"] <= 1 and lab["decision"] == (lab["probability"] >= lab["threshold"])
    assert body["file"] == {
        "name": "xray.png",
        "format": "png",
        "bytes": len(png_bytes),
        "height": 300,
        "width": 240,
    }
    ex = body["explanation"]
    assert ex["method"] == "gradcam" and ex["label"] == "Mass"
    assert ex["heatmap"].startswith("data:image/png;base64,") and body["image"].startswith("data:image/png")
    assert body["image_size"] == [240, 300]
    for box in ex["boxes"]:
        assert 0 <= box["x"] < 240 and 0 <= box["y"] < 300 and box["w"] >= 1 and box["h"] >= 1
    # the same numbers as the library path: decode -> resize to the cache size -> forward
    served = load_served(run_dir)
    from chestxai.serve.inputs import load_files

    tmp = run_dir.parent / "check.png"
    tmp.write_bytes(png_bytes)
    expected = served.forward(load_files([tmp], served.resize_to).images)[0]
    got = np.array([lab["probability"] for lab in body["labels"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_model_and_uncertainty_choice(client, png_bytes):
    r = client.post(
        "/v1/predict?model=mc&uncertainty=mc-dropout&passes=8", files={"file": ("a.png", png_bytes)}
    )
    assert r.status_code == 200, r.text
    u = r.json()["uncertainty"]
    assert u["method"] == "mc-dropout" and u["passes"] == 8 and set(u["std"]) == set(LABELS)
    assert any(v > 0 for v in u["std"].values())  # dropout sampled
    r = client.post("/v1/predict?model=run&uncertainty=mc-dropout", files={"file": ("a.png", png_bytes)})
    assert r.status_code == 422 and "dropout" in r.json()["detail"]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("model=nope", 404, "not served"),
        ("label=Nodule", 422, "not one of"),
        ("explain=magic", 422, "choose one of"),
        ("passes=1", 422, ""),
    ],
)
def test_bad_queries_are_refused_before_the_upload_is_read(client, png_bytes, query, status, words):
    r = client.post(f"/v1/predict?{query}", files={"file": ("a.png", png_bytes, "image/png")})
    assert r.status_code == status and words in r.text
    still_up(client, png_bytes)


def test_oversize_upload_is_413(client, png_bytes):
    big = np.random.default_rng(1).integers(0, 255, (800, 800), dtype=np.uint8)
    data = cv2.imencode(".png", big)[1].tobytes()
    assert len(data) > 200_000
    r = client.post("/v1/predict", files={"file": ("big.png", data, "image/png")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    still_up(client, png_bytes)


def test_streamed_body_without_length_is_cut_at_the_limit(client, png_bytes):
    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        for _ in range(100):
            yield b"\x00" * 10_000

    r = client.post(
        "/v1/predict", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code == 413
    still_up(client, png_bytes)


@pytest.mark.parametrize(
    ("name", "data", "ctype", "status", "words"),
    [
        (
            "notes.png",
            b"this is a text file, not an image\n" * 20,
            "image/png",
            415,
            "not a PNG, JPEG or DICOM",
        ),
        ("x.jpg", None, "image/jpeg", 415, "says JPEG but the content is PNG"),
        ("x.dcm", None, None, 415, "says DICOM but the content is PNG"),
        ("x.dcm", None, "application/octet-stream", 415, "extension says DICOM"),
        ("empty.png", b"", "image/png", 422, "empty"),
        ("cut.png", "truncated", "image/png", 422, "cannot decode"),
    ],
)
def test_wrong_or_broken_content_is_refused_with_a_message(
    client, png_bytes, name, data, ctype, status, words
):
    data = png_bytes if data is None else (png_bytes[: len(png_bytes) // 2] if data == "truncated" else data)
    files = {"file": (name, data, ctype) if ctype else (name, data)}
    r = client.post("/v1/predict", files=files)
    assert r.status_code == status and words in r.json()["detail"], r.text
    still_up(client, png_bytes)


def test_missing_field_and_non_multipart_bodies(client, png_bytes):
    r = client.post("/v1/predict", files={"image": ("a.png", png_bytes)})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = client.post("/v1/predict", content=png_bytes, headers={"content-type": "image/png"})
    assert r.status_code == 422 and "multipart" in r.json()["detail"]
    still_up(client, png_bytes)


def test_a_decompression_bomb_is_refused_without_exhausting_memory(client, png_bytes, tmp_path):
    bomb = png_bomb()  # claims 10^10 pixels (10 GB decoded) in < 100 bytes
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = client.post("/v1/predict", files={"file": ("bomb.png", bomb, "image/png")})
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert r.status_code == 413 and "decompression-bomb" in r.json()["detail"]
    assert after - before < 200_000  # KiB: nothing near the 10 GB the header asks for
    # a real, fully valid image above the service's pixel limit (4 MP here) is refused the same way
    real = write_png(tmp_path / "large.png", np.zeros((2100, 2100), np.uint8)).read_bytes()
    r = client.post("/v1/predict", files={"file": ("large.png", real, "image/png")})
    assert r.status_code == 413 and "max_pixels" in r.json()["detail"]
    still_up(client, png_bytes)


def test_a_slow_request_times_out_with_504_and_the_service_recovers(run_dir, png_bytes):
    models = load_all([run_dir])
    gate = threading.Event()
    plain = models["run"].forward

    def slow(images, batch_size=64):
        gate.wait(30)
        return plain(images, batch_size)

    models["run"].forward = slow
    with TestClient(create_app(models, Limits(timeout_s=0.5)), base_url=LOCAL) as c:
        r = c.post("/v1/predict", files={"file": ("a.png", png_bytes)})
        assert r.status_code == 504 and "limit" in r.json()["detail"]
        gate.set()
        assert c.post("/v1/predict", files={"file": ("a.png", png_bytes)}).status_code == 200


def test_read_only_run_and_nothing_left_behind(run_dir, png_bytes, tmp_path):
    ro = tmp_path / "ro"
    shutil.copytree(run_dir, ro)
    before = {p: p.stat().st_mtime_ns for p in ro.rglob("*")}
    for p in [ro, *ro.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        app = create_app(load_all([ro]))
        with TestClient(app, base_url=LOCAL) as c:
            temp = app.state.temp_folder
            assert temp.is_dir()
            r = c.post("/v1/predict?explain=gradcam", files={"file": ("a.png", png_bytes)})
            assert r.status_code == 200
            assert list(temp.iterdir()) == []  # the upload was deleted with its request
        assert not temp.exists()  # and the folder at shutdown
        assert {p: p.stat().st_mtime_ns for p in ro.rglob("*")} == before
    finally:
        for p in [ro, *ro.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert os.access(ro, os.W_OK)

"""The service as users run it: `chestxai serve` in its own process (uvicorn) on a free loopback
port, every endpoint over real HTTP, the refusals, and that it is still up after each."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from serve_helpers import LABELS, png_bomb, start_serve_process

httpx = pytest.importorskip("httpx", reason="pip install 'chestxai[dev]'")
pytest.importorskip("uvicorn", reason="pip install 'chestxai[serve]'")


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server-tmp")  # TMPDIR of the server: must be empty after it stops
    base, proc = start_serve_process(run_dir, tmp, "--max-upload-mb", "0.1")
    yield base, proc, tmp
    proc.terminate()
    proc.wait(30)
    assert list(tmp.iterdir()) == [], "the server left files in its temporary folder"


@pytest.fixture(scope="module")
def png():
    return cv2.imencode(".png", np.random.default_rng(2).integers(0, 255, (200, 200), dtype=np.uint8))[
        1
    ].tobytes()


def up(base: str, png: bytes) -> None:
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
    assert httpx.post(f"{base}/v1/predict", files={"file": ("a.png", png, "image/png")}).status_code == 200


@pytest.mark.slow
def test_every_endpoint_over_http(server, png):
    base, proc, _ = server
    assert httpx.get(f"{base}/healthz").json()["models"] == ["run"]
    assert httpx.get(f"{base}/v1/models").json()["models"][0]["labels"] == LABELS
    assert httpx.get(f"{base}/docs").status_code == 200
    assert "/v1/predict" in httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "not for clinical use" in httpx.get(f"{base}/").text
    r = httpx.post(
        f"{base}/v1/predict?explain=gradcam&display=true", files={"file": ("a.png", png, "image/png")}
    )
    assert r.status_code == 200 and r.json()["explanation"]["heatmap"].startswith("data:image/png")
    assert proc.poll() is None


@pytest.mark.slow
def test_bad_requests_over_http_leave_it_up(server, png):
    base, proc, _ = server
    big = cv2.imencode(".png", np.random.default_rng(3).integers(0, 255, (500, 500), dtype=np.uint8))[
        1
    ].tobytes()
    cases = [
        (("big.png", big, "image/png"), 413, "limit"),
        (("notes.png", b"plain text, not pixels\n" * 10, "image/png"), 415, "not a PNG"),
        (("bomb.png", png_bomb(), "image/png"), 413, "decompression-bomb"),
    ]
    for upload, status, words in cases:
        r = httpx.post(f"{base}/v1/predict", files={"file": upload}, timeout=60)
        assert r.status_code == status and words in r.json()["detail"], (upload[0], r.text)
        up(base, png)
    assert proc.poll() is None


def test_serve_binds_to_loopback_by_default():
    from chestxai.cli import build_parser

    args = build_parser().parse_args(["serve", "runs/x"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.max_upload_mb == 25.0

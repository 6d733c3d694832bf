"""The service's limits against slow, greedy and hostile clients, in process (FastAPI's TestClient):
the heavy queue, cancellation of abandoned passes, the passes cap, the upload budget, Host names,
long multipart boundaries and stale temporary folders. Over a real uvicorn: test_slow_clients.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from serve_helpers import LOCAL

pytest.importorskip("fastapi", reason="pip install 'chestxai[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from chestxai.serve.app import create_app  # noqa: E402
from chestxai.serve.limits import MB, Limits, RequestError  # noqa: E402
from chestxai.serve.models import load_all  # noqa: E402


@pytest.fixture(scope="module")
def png_bytes():
    ok, buf = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    return buf.tobytes()


def post(c, png: bytes, query: str = ""):
    return c.post(f"/v1/predict{query}", files={"file": ("a.png", png, "image/png")})


def test_a_timed_out_tta_request_stops_its_passes(run_dir, png_bytes):
    """Item 19: the 504 comes at the deadline and the passes stop soon after (counted as rows
    through the model), instead of all 200 running on in a thread."""
    models = load_all([run_dir])
    model = models["run"].model
    rows: list[int] = []

    def slow_forward(module, args):  # TTA forwards (several views): count their rows, take 100 ms
        if len(args[0]) > 1:
            rows.append(len(args[0]))
            time.sleep(0.1)

    limits = Limits(timeout_s=1.5, max_passes=200)
    with TestClient(create_app(models, limits), base_url=LOCAL) as c:
        assert post(c, png_bytes, "?uncertainty=tta&passes=2").status_code == 200  # warm
        hook = model.register_forward_pre_hook(slow_forward)
        try:
            rows.clear()
            t0 = time.perf_counter()
            r = post(c, png_bytes, "?uncertainty=tta&passes=200")
            answered = time.perf_counter() - t0
            assert r.status_code == 504 and "--timeout" in r.json()["detail"]
            assert sum(rows) > 0, "the TTA passes never started: the test measures nothing"
            time.sleep(1.0)
            done = sum(rows)
            time.sleep(0.5)
        finally:
            hook.remove()
        assert sum(rows) == done, "passes went on running after the request was abandoned"
        # 200 passes at 8 a forward take 25 x 100 ms; the 504 came after ~1.5 s
        assert done < 200, f"all {done} TTA passes ran for a request that had timed out"
        assert answered < 5
        health = c.get("/healthz").json()
        assert health["heavy"]["run"]["cancelled"] == 1, health
        assert post(c, png_bytes).status_code == 200  # and the service answers


def test_heavy_requests_queue_apart_and_plain_predictions_pass(run_dir, png_bytes):
    """Item 19: with one uncertainty job running and --heavy-queue 1 waiting, the next heavy
    request gets 503 + Retry-After at once, and a plain prediction still answers."""
    models = load_all([run_dir])
    gate = threading.Event()
    served = models["run"]
    plain = served.uncertainty

    def held(*args, should_stop=None, **kw):
        gate.wait(20)
        return plain(*args, should_stop=should_stop, **kw)

    served.uncertainty = held
    app = create_app(models, Limits(heavy_queue=1))
    with TestClient(app, base_url=LOCAL) as c, ThreadPoolExecutor(2) as pool:
        running = [pool.submit(post, c, png_bytes, "?uncertainty=tta&passes=4") for _ in range(2)]
        deadline = time.monotonic() + 10
        while c.get("/healthz").json()["heavy"]["run"] != {"running": 1, "waiting": 1, "cancelled": 0}:
            assert time.monotonic() < deadline, c.get("/healthz").json()
            time.sleep(0.05)
        third = post(c, png_bytes, "?uncertainty=tta&passes=4")
        assert third.status_code == 503 and third.headers["retry-after"] == "1"
        assert "--heavy-queue" in third.json()["detail"]
        assert post(c, png_bytes).status_code == 200  # not stuck behind the heavy ones
        gate.set()
        assert [f.result().status_code for f in running] == [200, 200]


def test_passes_above_the_service_cap_are_refused(run_dir, png_bytes):
    with TestClient(create_app(load_all([run_dir]), Limits(max_passes=10)), base_url=LOCAL) as c:
        r = post(c, png_bytes, "?uncertainty=tta&passes=11")
        assert r.status_code == 422 and "--max-passes" in r.json()["detail"]
        assert post(c, png_bytes, "?uncertainty=tta&passes=10").status_code == 200
    assert Limits().max_passes == 50
    with pytest.raises(ValueError, match="--max-passes"):
        Limits(max_passes=1)


def test_upload_budget_refuses_uploads_and_bytes_beyond_the_caps():
    """Item 18: uploads in flight and their bytes in the temporary folder are capped (503 +
    Retry-After), and closing a ticket gives its share back."""
    from chestxai.serve.upload import UploadBudget

    budget = UploadBudget(Limits(max_uploads=2, max_upload_bytes=10 * MB, max_temp_bytes=30 * MB))
    a, b = budget.open(), budget.open()
    with pytest.raises(RequestError) as err:
        budget.open()
    assert err.value.status == 503 and err.value.headers == {"Retry-After": "1"}
    assert "--max-uploads" in err.value.detail
    a.hold(10 * MB)
    b.hold(20 * MB)
    b.close()
    c = budget.open()
    c.hold(20 * MB)
    with pytest.raises(RequestError, match="--max-temp-mb") as err:
        c.hold(20 * MB + 1)
    assert err.value.status == 503
    a.close(), c.close(), c.close()  # closing twice gives back once
    assert (budget.uploads, budget.bytes) == (0, 0)
    with pytest.raises(ValueError, match="--max-temp-mb"):
        Limits(max_upload_bytes=10 * MB, max_temp_bytes=5 * MB)


def test_a_long_multipart_boundary_is_a_400_not_a_500(run_dir):
    """Item 22: python-multipart refuses boundaries over 256 characters with an exception the
    service did not catch (HTTP 500)."""
    with TestClient(create_app(load_all([run_dir])), base_url=LOCAL, raise_server_exceptions=False) as c:
        boundary = "b" * 300
        body = f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=a.png\r\n\r\nxx\r\n--{boundary}--\r\n"
        r = c.post(
            "/v1/predict", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert r.status_code == 400 and "boundary is 300 characters" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200


def test_only_allowed_host_names_are_answered(run_dir):
    """Item 22: DNS rebinding - a request whose Host is another name gets 400; the loopback names
    (with or without a port, IPv6 in brackets) pass by default, and --allowed-hosts sets others."""
    with TestClient(create_app(load_all([run_dir])), base_url=LOCAL) as c:
        assert c.get("/healthz", headers={"host": "attacker.example"}).status_code == 400
        assert c.get("/healthz", headers={"host": "attacker.example:8000"}).status_code == 400
        for host in ("127.0.0.1", "localhost:8000", "[::1]:8000", "LOCALHOST"):
            assert c.get("/healthz", headers={"host": host}).status_code == 200, host
    limits = Limits(allowed_hosts=("xray.example.org",))
    with TestClient(create_app(load_all([run_dir]), limits), base_url="http://xray.example.org") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": "127.0.0.1"}).status_code == 400
    with pytest.raises(ValueError, match="--allowed-hosts"):
        Limits(allowed_hosts=())


def test_binding_elsewhere_says_which_hosts_to_allow():
    from chestxai.serve.hosts import binding_advice
    from chestxai.serve.limits import LOOPBACK_HOSTS

    assert binding_advice("127.0.0.1", LOOPBACK_HOSTS) is None
    assert "--allowed-hosts HOST" in binding_advice("0.0.0.0", LOOPBACK_HOSTS)
    assert binding_advice("0.0.0.0", ("*",)) is None
    assert binding_advice("10.0.0.5", ("10.0.0.5",)) is None


def test_stale_temp_folders_of_dead_servers_are_removed_at_start(run_dir, tmp_path, monkeypatch):
    """Item 22: a killed server's folder (uploads of patients' images) is removed by the next
    server; a live server's folder and folders this service did not name are left alone."""
    import tempfile

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"chestxai-serve-pid{dead.pid}-x1"
    live = tmp_path / f"chestxai-serve-pid{os.getppid()}-x2"
    other = tmp_path / f"someone-else-pid{dead.pid}-x3"
    for d in (stale, live, other):
        d.mkdir()
        (d / "upload-1").write_bytes(b"patient image")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = create_app(load_all([run_dir]))
    with TestClient(app, base_url=LOCAL):
        assert app.state.temp_folder.parent == tmp_path
        assert not stale.exists()
        assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])

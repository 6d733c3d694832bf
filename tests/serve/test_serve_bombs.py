"""Issue 20, items 16-17 in the service: bombs get 413 from the header (deflated DICOM, bytes not
pixels) and decoding is bounded (``--max-decodes``: the rest wait; a full line gets 503), also
when a request times out while its decode thread still runs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from serve_helpers import LOCAL, write_png

pytest.importorskip("fastapi", reason="pip install 'chestxai[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

import chestxai.serve.app as app_module  # noqa: E402
from chestxai.serve.app import create_app  # noqa: E402
from chestxai.serve.limits import Limits  # noqa: E402
from chestxai.serve.models import load_all  # noqa: E402
from chestxai.testing import deflated_dicom_bomb, png_bomb_file  # noqa: E402

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def good_png(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("good") / "ok.png"
    return write_png(path, rng.integers(0, 255, (300, 240), dtype=np.uint8)).read_bytes()


def post(client, name: str, data: bytes, kind: str = "image/png"):
    return client.post("/v1/predict", files={"file": (name, data, kind)})


def until(cond, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for the service"
        time.sleep(0.01)


def test_bombs_are_refused_with_413_and_the_next_request_is_answered(run_dir, good_png, tmp_path):
    limits = Limits(max_upload_bytes=1_000_000, max_pixels=4_000_000, max_decode_bytes=4 * MiB)
    with TestClient(create_app(load_all([run_dir]), limits), base_url=LOCAL) as client:
        # 96 MiB of zeros behind a 64 x 64 header, in a 98 KB deflated DICOM
        bomb = deflated_dicom_bomb(tmp_path / "bomb.dcm", pixel_mib=96).read_bytes()
        r = post(client, "bomb.dcm", bomb, "application/dicom")
        assert r.status_code == 413 and "holds more than its header declares" in r.json()["detail"]
        # an honest deflated header under the pixel limit (2.25 MP) but over the byte budget (4.3 MiB)
        big = deflated_dicom_bomb(tmp_path / "big.dcm", rows=1500, cols=1500, bits=16).read_bytes()
        r = post(client, "big.dcm", big, "application/dicom")
        assert r.status_code == 413 and "--max-decode-mb" in r.json()["detail"]
        # RGBA: 1.2 MP (under max_pixels) but 4.6 MiB of samples
        rgba = png_bomb_file(tmp_path / "rgba.png", 1100, 1100, "RGBA").read_bytes()
        r = post(client, "rgba.png", rgba)
        assert r.status_code == 413 and "1100x1100 RGBA" in r.json()["detail"]
        assert client.get("/healthz").json()["status"] == "ok"
        assert post(client, "ok.png", good_png).status_code == 200


def blocking_decode(monkeypatch):
    """Make the service's decode wait for ``release``; returns (release event, calls started)."""
    release = threading.Event()
    started = []
    plain = app_module._decode

    def slow(*args):
        started.append(1)
        release.wait(30)
        return plain(*args)

    monkeypatch.setattr(app_module, "_decode", slow)
    return release, started


def test_decodes_beyond_the_gate_wait_and_a_full_line_gets_503(run_dir, good_png, monkeypatch):
    release, started = blocking_decode(monkeypatch)
    app = create_app(load_all([run_dir]), Limits(max_decodes=1, max_queue=2))
    gate = app.state.decode_gate
    answers = []

    def send(name):
        thread = threading.Thread(target=lambda: answers.append(post(client, name, good_png)))
        thread.start()
        return thread

    with TestClient(app, base_url=LOCAL) as client:
        threads = [send("a.png")]
        until(lambda: gate.running == 1)
        threads += [send("b.png"), send("c.png")]
        until(lambda: gate.waiting == 2)
        assert len(started) == 1  # the other uploads wait: they have not started to decode
        r = post(client, "d.png", good_png)  # the line (--max-queue 2) is full
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert "--max-decodes" in r.json()["detail"]
        release.set()
        for t in threads:
            t.join(30)
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        assert gate.peak == 1 and gate.running == 0
        assert post(client, "d.png", good_png).status_code == 200


def test_a_timed_out_decode_keeps_its_slot_until_its_thread_ends(run_dir, good_png, monkeypatch):
    """A 504 cannot stop a decode thread; its slot stays taken, so no second decode runs beside it."""
    release, started = blocking_decode(monkeypatch)
    app = create_app(load_all([run_dir]), Limits(timeout_s=0.5, max_decodes=1, max_queue=4))
    gate = app.state.decode_gate
    with TestClient(app, base_url=LOCAL) as client:
        r = post(client, "a.png", good_png)
        assert r.status_code == 504  # answered at the deadline, while the thread still decodes
        assert gate.running == 1
        r = post(client, "b.png", good_png)
        assert r.status_code == 504  # it waited for the slot the first thread still holds
        assert len(started) == 1 and gate.peak == 1
        release.set()
        until(lambda: gate.running == 0)
        assert post(client, "c.png", good_png).status_code == 200
        assert gate.peak == 1


def test_predict_lists_bombs_as_skipped_and_predicts_the_rest(run_dir, good_png, tmp_path, capsys):
    import pandas as pd

    from chestxai.cli import main

    (tmp_path / "ok.png").write_bytes(good_png)
    bomb = deflated_dicom_bomb(tmp_path / "bomb.dcm", pixel_mib=96)
    rgba = png_bomb_file(tmp_path / "rgba.png", 8900, 8900, "RGBA", complete=False)
    out = tmp_path / "preds.csv"
    argv = ["predict", str(run_dir), "--images", str(tmp_path / "ok.png"), str(bomb), str(rgba)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert [p.rsplit("/", 1)[-1] for p in pd.read_csv(out)["path"]] == ["ok.png"]
    skipped = pd.read_csv(tmp_path / "preds.skipped.csv")
    reasons = dict(zip(skipped["path"].str.rsplit("/", n=1).str[-1], skipped["reason"], strict=True))
    assert "holds more than its header declares" in reasons["bomb.dcm"]
    assert "--max-decode-mb" in reasons["rgba.png"]

"""Slow and stalled clients against `chestxai serve` in its own process (uvicorn, free loopback
port): a client sending its headers or its body a byte at a time is cut at --timeout, stalled
uploads beyond the temporary folder's budget get 503, and SIGTERM with a slow client exits within
--graceful-timeout (issue 20 item 18 and the serve parts of 22). Each test prints what it measured."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import time

import pytest
from serve_helpers import start_serve_process

httpx = pytest.importorskip("httpx", reason="pip install 'chestxai[dev]'")
pytest.importorskip("uvicorn", reason="pip install 'chestxai[serve]'")

pytestmark = pytest.mark.slow

TIMEOUT = 3.0  # the server's --timeout in these tests
MB = 1024 * 1024


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def post_head(length: int, boundary: str = "slowclient") -> bytes:
    return (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


def trickle(sock: socket.socket, first: bytes, drip: bytes, limit: float) -> tuple[float, bytes]:
    """Send ``first``, then ``drip`` every 0.5 s until the server closes the connection (or
    ``limit`` seconds pass): (seconds until closed - ``limit`` when it never was, what it answered)."""
    t0 = time.monotonic()
    sock.sendall(first)
    answer = b""
    while time.monotonic() - t0 < limit:
        ready, _, _ = select.select([sock], [], [], 0.5)
        try:
            if ready:
                data = sock.recv(65536)
                if not data:
                    return time.monotonic() - t0, answer
                answer += data
            else:
                sock.sendall(drip)
        except OSError:  # reset / broken pipe: closed
            return time.monotonic() - t0, answer
    return limit, answer


def slow_header_seconds(base: str, limit: float = 15.0) -> float:
    with connect(base) as s:
        closed, _ = trickle(s, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n", limit)
    return closed


def slow_body_seconds(base: str, limit: float = 15.0) -> tuple[float, bytes]:
    with connect(base) as s:
        return trickle(s, post_head(100_000), b"\x00", limit)


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow-tmp")
    flags = ["--timeout", str(TIMEOUT), "--max-upload-mb", "24", "--max-temp-mb", "100"]
    base, proc = start_serve_process(run_dir, tmp, *flags)
    yield base, proc, tmp
    proc.terminate()
    proc.wait(30)
    assert [p for p in tmp.iterdir() if p.name.startswith("chestxai-serve")] == []


def test_a_slow_header_client_is_cut_at_the_deadline(server):
    """uvicorn has no header timeout: the protocol's own timer closes the connection."""
    base, proc, _ = server
    closed = slow_header_seconds(base)
    print(f"slow-header client closed after {closed:.2f} s (--timeout {TIMEOUT:g})")
    assert TIMEOUT - 0.5 < closed < TIMEOUT + 3, closed
    assert httpx.get(f"{base}/healthz").status_code == 200 and proc.poll() is None


def test_a_slow_body_client_gets_504_at_the_deadline(server):
    """The deadline covers receiving the upload: 504 and the connection closed."""
    base, proc, tmp = server
    closed, answer = slow_body_seconds(base)
    print(f"slow-body client answered {answer[:12]!r} and closed after {closed:.2f} s")
    assert answer.startswith(b"HTTP/1.1 504") and b"--timeout" in answer, answer
    assert TIMEOUT - 0.5 < closed < TIMEOUT + 3, closed
    folder = next(p for p in tmp.iterdir() if p.name.startswith("chestxai-serve"))
    assert list(folder.iterdir()) == []  # the partial upload was deleted with its request


def test_stalled_uploads_beyond_the_temp_budget_get_503(server):
    """Eight stalled 24 MB uploads (each declaring its length, sending 64 KB, then nothing): the
    budget (--max-temp-mb 100) holds four; the others get 503 + Retry-After at once; the four are
    cut at the deadline, and the service answers throughout."""
    base, proc, _ = server
    socks, t0 = [], time.monotonic()
    for _ in range(8):
        s = connect(base)
        s.sendall(post_head(24 * MB) + b"\x00" * 65536)
        socks.append(s)
        time.sleep(0.1)
    answers: dict[int, tuple[float, bytes]] = {}
    held = None
    while len(answers) < 8 and time.monotonic() - t0 < 15:
        ready, _, _ = select.select([s for s in socks if socks.index(s) not in answers], [], [], 0.2)
        for s in ready:
            data = s.recv(65536)
            answers[socks.index(s)] = (time.monotonic() - t0, data)
        if len(answers) == 4 and held is None:
            held = httpx.get(f"{base}/healthz").json()["uploads"]
    for s in socks:
        s.close()
    codes = {k: v[1][:12] for k, v in answers.items()}
    times = {k: round(v[0], 2) for k, v in answers.items()}
    print(f"stalled uploads: answers {codes}, seconds {times}; held after the refusals: {held}")
    refused = [k for k, (t, a) in answers.items() if a.startswith(b"HTTP/1.1 503")]
    cut = [k for k, (t, a) in answers.items() if a.startswith(b"HTTP/1.1 504")]
    assert len(refused) == 4 and len(cut) == 4, codes
    assert all(b"retry-after: 1" in answers[k][1].lower() for k in refused)
    assert max(answers[k][0] for k in refused) < 2.0  # at once, not at the deadline
    assert all(answers[k][0] < TIMEOUT + 3 for k in cut)
    assert httpx.get(f"{base}/healthz").json()["uploads"] == {"in_flight": 0, "mb": 0.0}


def test_sigterm_with_slow_clients_exits_within_the_graceful_timeout(run_dir, tmp_path):
    """A slow-body client and a slow-header client do not keep a stopping server alive: it exits
    within --graceful-timeout (here 2 s, with a 60 s --timeout that would not save it) and
    removes its temporary folder."""
    base, proc = start_serve_process(run_dir, tmp_path, "--timeout", "60", "--graceful-timeout", "2")
    body, header = connect(base), connect(base)
    try:
        body.sendall(post_head(100_000) + b"\x00" * 100)
        header.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("chestxai serve did not exit within 20 s of SIGTERM with a slow client")
        exited = time.monotonic() - t0
    finally:
        body.close()
        header.close()
    print(f"SIGTERM with a slow client: exited after {exited:.2f} s (--graceful-timeout 2)")
    assert exited < 2 + 4, exited
    assert [p for p in tmp_path.iterdir() if p.name.startswith("chestxai-serve")] == []

"""The README's serve-and-open snippet waits for ``/healthz`` (issue 20 item 10g).

``serve ... & sleep 10`` opened the viewer before a loaded machine had the model up. The README's
readiness loop is run here as written (only the port changed): it returns once the server answers,
however late, and gives up with exit code 124 at its timeout when nothing ever answers.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.skipif(not shutil.which("curl") or not shutil.which("timeout"), reason="needs curl")


def _readiness_loop() -> str:
    """The README's line that waits for the server, without the line continuation."""
    line = next(x for x in README.read_text().splitlines() if "until curl" in x and "/healthz" in x)
    return line.rstrip().removesuffix("\\").strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_waits_for_healthz_not_a_fixed_sleep():
    text = README.read_text()
    assert "& sleep" not in text
    assert _readiness_loop().startswith("timeout ")


def test_the_readiness_loop_returns_once_a_late_server_answers(tmp_path):
    (tmp_path / "healthz").write_text('{"status": "ok"}')
    port = _free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server: list[http.server.HTTPServer] = []

    def start() -> None:  # the "model" takes 2 s to load
        server.append(http.server.HTTPServer(("127.0.0.1", port), handler))
        server[0].serve_forever()

    timer = threading.Timer(2.0, start)
    timer.start()
    try:
        loop = _readiness_loop().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        done = subprocess.run(["sh", "-c", loop], capture_output=True, timeout=150)
        assert done.returncode == 0, done.stderr
        assert server  # it returned because the server answered, not before
    finally:
        timer.cancel()
        if server:
            server[0].shutdown()  # before join: the timer's thread is serve_forever
        timer.join()


def test_the_readiness_loop_gives_up_at_its_timeout():
    loop = _readiness_loop().replace("127.0.0.1:8000", f"127.0.0.1:{_free_port()}")
    assert loop.startswith("timeout 120 ")
    done = subprocess.run(
        ["sh", "-c", loop.replace("timeout 120 ", "timeout 2 ", 1)], capture_output=True, timeout=30
    )
    assert done.returncode == 124  # nothing listens: the loop ends, it does not hang

"""Shared by the serve and export tests: small runs made by the real writers, image files, a bomb."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.testing import SPLIT_CYCLE, write_tiny_cache

LABELS = ["Atelectasis", "Effusion", "Mass"]


def make_run(
    root: Path,
    cache_size: int = 48,
    input_size: int = 32,
    dropout: float = 0.0,
    seed: int = 0,
    name: str = "run",
) -> Path:
    """A multi-label run whose cache (``cache_size`` px) differs from the model input size, so that
    every path (predict, serve, ONNX) must resize as ``to_input`` does. Untrained but seeded."""
    rng = np.random.default_rng(seed)
    n = 24
    images = rng.integers(0, 255, size=(n, cache_size, cache_size), dtype=np.uint8)
    labels = (rng.random((n, len(LABELS))) < 0.4).astype(np.float32)
    labels[0], labels[1] = 1, 0  # both classes in every split
    split = [SPLIT_CYCLE[i % len(SPLIT_CYCLE)] for i in range(n)]
    cache = write_tiny_cache(root / "cache", images, labels, LABELS, "multilabel", split=split)
    run = RunDir(root / name)
    run.root.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(
            "resnet18", num_labels=len(LABELS), task="multilabel", input_size=input_size, dropout=dropout
        )
    preprocess = {"size": input_size, "mean": 0.5, "std": 0.25}
    config = {"data": {"cache_dir": str(cache), "size": cache_size}}
    save_atomic(make_checkpoint(model, LABELS, preprocess, config=config, epoch=2), run.checkpoint)
    return run.root


def write_png(path: Path, array: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG whose header claims ``width x height`` pixels (10^10 by default): a
    decoder that allocated before checking would need 10 GB; the file is under 100 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nih_images(shared: Path, n: int) -> list[Path]:
    return sorted((shared / "nih-bbox" / "images").glob("*.png"))[:n]


def dicoms(shared: Path) -> list[Path]:
    return sorted((shared / "dicom").glob("*.dcm"))


#: the base URL for FastAPI's TestClient: its default Host "testserver" is not an allowed host
LOCAL = "http://127.0.0.1"


@contextlib.contextmanager
def serve_in_thread(app):
    """uvicorn serving ``app`` on a free loopback port in a thread of this process; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(30)


def start_serve_process(run_dir: Path, tmp: Path, *flags: str) -> tuple[str, subprocess.Popen]:
    """``chestxai serve RUN FLAGS`` in its own process on a free loopback port, with ``tmp`` as its
    TMPDIR; returns its base URL once ``/healthz`` answers (the test fails if it exits or takes 120 s)."""
    import httpx
    import pytest

    port = free_port()
    cmd = [sys.executable, "-m", "chestxai", "serve", str(run_dir), "--port", str(port), *flags]
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"chestxai serve exited early: {proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base, proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("chestxai serve did not answer /healthz within 120 s")
        time.sleep(0.3)

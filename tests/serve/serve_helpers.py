"""Shared by the serve and export tests: small runs made by the real writers, image files, a bomb."""

from __future__ import annotations

import socket
import struct
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

"""Shared fixtures: the real-data folder (skip when absent) and tiny synthetic caches; MLflow is
hidden from every test but those marked ``real_mlflow`` (:mod:`mlflow_off`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chestxai.paths import shared_data_root
from chestxai.testing import blob_dataset, write_tiny_cache  # noqa: F401  (re-exported for tests)

pytest_plugins = ["mlflow_off"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$CHESTXAI_DATA``); tests using it skip with a reason when absent."""
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"real data folder {root} is absent (set CHESTXAI_DATA to run real-data tests)")
    return root


@pytest.fixture
def make_tiny_cache(tmp_path):
    """Factory fixture: ``make_tiny_cache(images, labels, label_names, task, **kw) -> Path``."""

    def make(images, labels, label_names, task, name="cache", **kw):
        return write_tiny_cache(tmp_path / name, images, labels, label_names, task, **kw)

    return make


@pytest.fixture(scope="module")
def blob_cache(tmp_path_factory) -> Path:
    """A 48-image binary cache of 16 px blobs (32 train, 16 val): the smallest run that trains."""
    images, labels, _ = blob_dataset(48, size=16, seed=1)
    split = ["train"] * 32 + ["val"] * 16
    return write_tiny_cache(
        tmp_path_factory.mktemp("cache") / "blobs", images, labels, ["Blob"], "binary", split=split
    )


CHROMIUM = "/usr/bin/chromium"
#: flags for a headless Chromium on a closed network (no background connections that would fail)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright, shared by every browser test (skips with a reason)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (in the [dev] extra)"
    )
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not executable:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def edges(monkeypatch):
    """A weight-independent explanation method - the Sobel magnitude of the *input*, which looks like
    a saliency map and ignores the model - registered as ``edges`` for one test (removed at teardown):
    what every randomisation check (sanity, scorecard) must fail."""
    import numpy as np
    from pytorch_grad_cam.base_cam import BaseCAM
    from scipy import ndimage

    from chestxai.explain.methods import METHODS, Method

    class EdgeMap(BaseCAM):
        def __init__(self, model, target_layers, reshape_transform=None):
            super().__init__(model, target_layers, reshape_transform, uses_gradients=False)

        def forward(self, input_tensor, targets=None, eigen_smooth=False):
            img = input_tensor.detach().float().cpu().numpy()[:, 0]
            mag = np.hypot(ndimage.sobel(img, axis=1), ndimage.sobel(img, axis=2))
            lo = mag.min(axis=(1, 2), keepdims=True)
            return (mag - lo) / (mag.max(axis=(1, 2), keepdims=True) - lo + 1e-7)

    class EdgeMethod(Method):
        summary = "Sobel edges of the input (weight-independent; a test double)"

        def build(self, model, target_layers, reshape_transform=None, rng=None):
            return EdgeMap(model, target_layers, reshape_transform)

    METHODS.names()  # the package's own methods first
    monkeypatch.setitem(METHODS._items, "edges", EdgeMethod)
    return "edges"

"""DICOM output tests share the serve tests' small runs (tests/serve/serve_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serve"))

from serve_helpers import make_run  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("dicom-run"))


@pytest.fixture(scope="session")
def real_dicom(shared_data) -> Path:
    """The real SIIM CR (JPEG baseline, 1024 px) in ../shared/data/dicom."""
    path = shared_data / "dicom" / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path

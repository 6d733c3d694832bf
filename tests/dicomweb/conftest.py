"""DICOMweb fixtures: Debian's Orthanc with its DICOMweb plugin (:mod:`orthanc_server`) and a tiny
run to predict with.

``make test`` installs orthanc, orthanc-dicomweb and dicom3tools when run as root; elsewhere the
tests that need the server skip with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from orthanc_server import start_orthanc

from chestxai.testing import write_tiny_run


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    yield from start_orthanc(tmp_path_factory.mktemp("orthanc"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """An untrained NIH-14 resnet18 at 32 px: the labels have codes, the forward is instant."""
    run, _ = write_tiny_run(tmp_path_factory.mktemp("dicomweb-run"), task="multilabel", n_labels=14)
    return run


@pytest.fixture(scope="session")
def real_dicom(shared_data) -> Path:
    path = shared_data / "dicom" / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the real SIIM DICOM of ../shared/data)")
    return path

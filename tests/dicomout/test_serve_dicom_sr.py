"""``POST /v1/predict?format=dicom-sr``: a DICOM upload answered with its SR; the refusals."""

from __future__ import annotations

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_helpers import make_dicom
from serve_helpers import LABELS, LOCAL

pytest.importorskip("fastapi", reason="pip install 'chestxai[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from chestxai.serve.app import create_app  # noqa: E402
from chestxai.serve.models import load_all  # noqa: E402

SR_3D = "1.2.840.10008.5.1.4.1.1.88.34"


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(load_all([run_dir])), base_url=LOCAL) as c:
        yield c


def post(client, name: str, data: bytes, kind: str, **query):
    return client.post("/v1/predict", params=query, files={"file": (name, data, kind)})


def test_dicom_upload_answered_with_its_sr(client, tmp_path):
    path = make_dicom(tmp_path / "x.dcm")
    source = pydicom.dcmread(path)
    r = post(client, "x.dcm", path.read_bytes(), "application/dicom", format="dicom-sr", label="Mass")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom"
    sr = pydicom.dcmread(pydicom.filebase.DicomBytesIO(r.content))
    assert sr.SOPClassUID == SR_3D and sr.StudyInstanceUID == source.StudyInstanceUID
    report = hd.sr.Comprehensive3DSR.from_dataset(sr)
    groups = report.content.get_image_measurement_groups()
    assert len(groups) == len(LABELS)
    assert groups[0].source_images[0].referenced_sop_instance_uid == source.SOPInstanceUID
    plain = post(client, "x.dcm", path.read_bytes(), "application/dicom").json()  # the same numbers as JSON
    for group, entry in zip(groups, plain["labels"], strict=True):
        measured = {m.name.value: m.value for m in group.get_measurements()}
        assert measured["122157"] == pytest.approx(entry["probability"], rel=1e-9)


def test_refusals(client, tmp_path):
    ok, png = cv2.imencode(".png", np.zeros((40, 30), np.uint8))
    r = post(client, "x.png", png.tobytes(), "image/png", format="dicom-sr")
    assert r.status_code == 415 and "not DICOM" in r.json()["detail"]
    mr = make_dicom(tmp_path / "mr.dcm", Modality="MR")
    r = post(client, "mr.dcm", mr.read_bytes(), "application/dicom", format="dicom-sr")
    assert r.status_code == 422 and "modality 'MR'" in r.json()["detail"]
    r = post(client, "x.png", png.tobytes(), "image/png", format="xml")
    assert r.status_code == 422 and "format='xml'" in r.json()["detail"]

"""QIDO / WADO / STOW against a real Orthanc with the real SIIM DICOM: stored, found by study, series
and date, retrieved decompressed and whole, other modalities skipped, basic auth refused and accepted."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicomweb_fakes import derive
from orthanc_server import start_orthanc
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from chestxai.dicomweb.connection import DicomwebError, Server, ServerSettings, open_session
from chestxai.dicomweb.query import InstanceRef, find_instances, parse_since
from chestxai.dicomweb.transfer import retrieve, store
from chestxai.errors import UserError

pytestmark = pytest.mark.realdata


def test_store_find_and_retrieve_a_real_dicom(orthanc, real_dicom, tmp_path):
    server = Server(ServerSettings(orthanc.dicomweb, retries=0))
    source = derive(real_dicom, tmp_path / "src.dcm", study=generate_uid())  # its own study
    ds = pydicom.dcmread(source)
    stored = store(server, source)
    assert (stored.stored, stored.sop) == (True, ds.SOPInstanceUID)
    expected = [InstanceRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, "CR")]
    assert find_instances(server, study=ds.StudyInstanceUID).instances == expected
    assert find_instances(server, series=ds.SeriesInstanceUID).instances == expected
    assert (
        expected[0] in find_instances(server, since=parse_since("1901-01-01")).instances
    )  # StudyDate 19010101
    assert expected[0] not in find_instances(server, since=parse_since("1901-01-02")).instances

    path = retrieve(server, expected[0], tmp_path / "got")
    assert path.name == f"{ds.SOPInstanceUID}.dcm" and not list(path.parent.glob(".*tmp"))
    got = pydicom.dcmread(path)
    # JPEG baseline on the server, Explicit VR Little Endian on the way back: Orthanc decompressed it
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (got.StudyInstanceUID, got.PatientID, got.Modality) == (ds.StudyInstanceUID, ds.PatientID, "CR")
    # the same image: lossy JPEG decoded by DCMTK (server) and by pydicom's decoder differ by rounding
    diff = np.abs(got.pixel_array.astype(int) - ds.pixel_array.astype(int))
    assert got.pixel_array.shape == (1024, 1024) and diff.max() <= 2 and diff.mean() < 0.1


def test_series_of_other_modalities_are_skipped_with_the_reason(orthanc, real_dicom, tmp_path):
    server = Server(ServerSettings(orthanc.dicomweb, retries=0))
    study = generate_uid()
    cr = derive(real_dicom, tmp_path / "cr.dcm", study=study)
    ot = derive(real_dicom, tmp_path / "ot.dcm", study=study, Modality="OT")
    dx = derive(real_dicom, tmp_path / "dx.dcm", study=study, Modality="DX")
    for path in (cr, ot, dx):
        assert store(server, path).stored
    found = find_instances(server, study=study)
    assert sorted(r.sop for r in found.instances) == sorted(
        pydicom.dcmread(p).SOPInstanceUID for p in (cr, dx)
    )
    assert [(s["series"], s["modality"]) for s in found.skipped] == [
        (pydicom.dcmread(ot).SeriesInstanceUID, "OT")
    ]
    assert "modality OT is not one of --modality CR,DX" in found.skipped[0]["reason"]
    only_ot = find_instances(server, study=study, modalities=("OT",))
    assert [r.sop for r in only_ot.instances] == [pydicom.dcmread(ot).SOPInstanceUID]


def test_a_missing_instance_is_one_404_line(orthanc):
    server = Server(ServerSettings(orthanc.dicomweb, retries=2, backoff=0))
    ref = InstanceRef(generate_uid(), generate_uid(), generate_uid())
    with pytest.raises(DicomwebError, match="answered 404") as caught:
        retrieve(server, ref, None)
    assert caught.value.status == 404 and server.attempts == 1  # a 404 is final: never asked again
    with pytest.raises(UserError, match="has no series"):
        find_instances(server, study=ref.study)


def test_orthanc_with_a_user_refuses_without_credentials_and_accepts_them(tmp_path, monkeypatch):
    for key in ("CHESTXAI_DICOMWEB_TOKEN", "CHESTXAI_DICOMWEB_USER", "CHESTXAI_DICOMWEB_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    running = start_orthanc(tmp_path, users={"radiology": "s3cret"})
    server_info = next(running)
    try:
        settings = ServerSettings(server_info.dicomweb, retries=0)
        with pytest.raises(DicomwebError, match="401 Unauthorized.*set CHESTXAI_DICOMWEB_TOKEN"):
            find_instances(Server(settings), study=generate_uid())
        env = {"CHESTXAI_DICOMWEB_USER": "radiology", "CHESTXAI_DICOMWEB_PASSWORD": "wrong"}
        with pytest.raises(DicomwebError, match="401 Unauthorized.*credentials were not accepted"):
            find_instances(Server(settings, open_session(settings, env)), study=generate_uid())
        env["CHESTXAI_DICOMWEB_PASSWORD"] = "s3cret"
        with pytest.raises(UserError, match="has no series"):  # in: the study just is not there
            find_instances(Server(settings, open_session(settings, env)), study=generate_uid())
    finally:
        running.close()

"""A scripted HTTP server for the failure cases a real Orthanc will not produce on demand (503s,
401s, one STOW refused out of two), and derived DICOM files with fresh UIDs."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid


class Script:
    """Answers in order (the last one repeats): ``(status, body dict or bytes, content type)``;
    records each request's method, path and headers."""

    def __init__(self, answers: list[tuple[int, object, str]]) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []


@contextlib.contextmanager
def fake_server(answers: list[tuple[int, object, str]]) -> Iterator[tuple[str, Script]]:
    script = Script(answers)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            elif self.headers.get("Transfer-Encoding") == "chunked":
                while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                    self.rfile.read(size + 2)
                self.rfile.readline()
            script.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
            status, body, kind = script.answers[0] if len(script.answers) == 1 else script.answers.pop(0)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def stow_answer(sop: str, failed: int | None = None) -> dict:
    """A STOW-RS answer in DICOM JSON: ``sop`` stored, or refused with failure reason ``failed``."""
    item = {
        "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00081155": {"vr": "UI", "Value": [sop]},
    }
    if failed is None:
        return {"00081199": {"vr": "SQ", "Value": [item]}}
    item["00081197"] = {"vr": "US", "Value": [failed]}
    return {"00081198": {"vr": "SQ", "Value": [item]}}


def derive(source: Path, dest: Path, study: str | None = None, **changes) -> Path:
    """A copy of ``source`` with a new series and SOP Instance UID (and ``study`` when given) and the
    attributes in ``changes``; says it is derived (SeriesDescription)."""
    ds = pydicom.dcmread(source)
    ds.StudyInstanceUID = study or ds.StudyInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = "derived by the chestxai tests (new UIDs)"
    for key, val in changes.items():
        setattr(ds, key, val)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest)
    return dest


def tiny_dicom(dest: Path, modality: str = "OT") -> Path:
    """A synthetic 8x8 secondary-capture instance with fresh UIDs (for STOW tests; no real data)."""
    import numpy as np
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = modality, "synthetic"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.arange(64, dtype=np.uint8).tobytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest, enforce_file_format=True)
    return dest

"""``check_source``: each reason a DICOM gets no DICOM results, one line each."""

from __future__ import annotations

import pydicom
import pytest
from dicom_helpers import make_dicom

from chestxai.dicomout import check_source


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"PixelData": None}, "without pixel data"),
        ({"Modality": "MR"}, "modality 'MR' is not a radiograph"),
        ({"Modality": None}, "modality 'missing'"),
        ({"NumberOfFrames": 3}, "multi-frame DICOM (3 frames)"),
        ({"StudyInstanceUID": None}, "without StudyInstanceUID"),
        ({"SeriesInstanceUID": None, "SOPInstanceUID": None}, "without SeriesInstanceUID, SOPInstanceUID"),
    ],
)
def test_each_refusal_names_its_reason(tmp_path, attrs, reason):
    ds = pydicom.dcmread(make_dicom(tmp_path / "x.dcm", **attrs))
    assert reason in check_source(ds)


def test_good_sources_and_forced_modality(tmp_path):
    assert check_source(pydicom.dcmread(make_dicom(tmp_path / "dx.dcm"))) is None
    assert check_source(pydicom.dcmread(make_dicom(tmp_path / "cr.dcm", Modality="CR"))) is None
    mr = pydicom.dcmread(make_dicom(tmp_path / "mr.dcm", Modality="MR"))
    assert check_source(mr, force_modality=True) is None


def test_a_transfer_syntax_without_a_decoder_is_refused(tmp_path):
    ds = pydicom.dcmread(make_dicom(tmp_path / "x.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder here
    reason = check_source(ds)
    assert "cannot be decoded here" in reason and "MPEG2" in reason

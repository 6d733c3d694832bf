"""The objects ``write_results`` writes: SOP classes, the source's study, references to the source
instance, the same values re-read with pydicom and highdicom, a float32 map on the source grid,
dciodvfy without errors, and the source file untouched."""

from __future__ import annotations

import hashlib
import shutil

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_helpers import COLS, ROWS, dciodvfy, findings, make_dicom, read

from chestxai.dicomout import check_source, codes, write_results
from chestxai.dicomout.pmap import with_nominal_frame
from chestxai.dicomout.source import TYPE2_COPIED

SR_3D = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR Storage
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None,
    reason="dciodvfy absent (apt-get install dicom3tools; make test does as root)",
)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def items(ds, code_value: str) -> list:
    """Every content item (any depth) whose concept name has ``code_value``."""
    found = []
    for item in ds.get("ContentSequence", []):
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == code_value:
            found.append(item)
        found += items(item, code_value)
    return found


@pytest.fixture
def written(tmp_path):
    source = make_dicom(tmp_path / "src" / "x.dcm")
    before = sha(source)
    result = findings(boxes=((5, 6, 20, 30), (40, 50, 25, 35)))
    out = write_results(pydicom.dcmread(source), result, tmp_path / "out", presentation_state=True)
    assert sha(source) == before, "the source file was modified"
    return source, result, out


def test_sop_classes_study_series_and_references(written):
    source_path, _, out = written
    source, sr, pm, pr = read(source_path), read(out.sr), read(out.pmap), read(out.pr)
    assert (sr.SOPClassUID, pm.SOPClassUID, pr.SOPClassUID) == (SR_3D, PARAMETRIC_MAP, GSPS)
    for obj in (sr, pm, pr):
        assert obj.StudyInstanceUID == source.StudyInstanceUID  # in the source's study
        assert obj.SeriesInstanceUID != source.SeriesInstanceUID  # a new series
        assert obj.SOPInstanceUID not in (source.SOPInstanceUID, sr.SOPInstanceUID if obj is not sr else "")
        assert (obj.PatientID, str(obj.PatientName), obj.PatientAge) == ("P-1", "Test^Derived", "055Y")
    assert len({sr.SeriesInstanceUID, pm.SeriesInstanceUID, pr.SeriesInstanceUID}) == 3
    # the SR's evidence lists the source and the map; the map derives from the source
    evidence = [
        ref.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    ]
    assert sorted(evidence) == sorted([source.SOPInstanceUID, pm.SOPInstanceUID])
    derived = (
        pm.SharedFunctionalGroupsSequence[0].get("DerivationImageSequence")
        or pm.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence
    )
    assert derived[0].SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert (
        pr.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID
        == source.SOPInstanceUID
    )


def test_sr_values_reread_with_highdicom_and_pydicom(written):
    source_path, result, out = written
    source = read(source_path)
    sr = hd.sr.srread(out.sr)
    groups = sr.content.get_image_measurement_groups()
    assert len(groups) == len(result.labels)
    for group, label, p, t, present in zip(
        groups, result.labels, result.probabilities, result.thresholds, result.decisions, strict=True
    ):
        scheme, value, _ = codes.finding_code(label)
        assert (group.finding_type.scheme_designator, group.finding_type.value) == (scheme, value)
        measured = {m.name.value: (m.value, m.unit.value) for m in group.get_measurements()}
        assert measured[codes.PROBABILITY[1]] == (pytest.approx(p, abs=1e-12), "1")
        assert measured[codes.THRESHOLD[1]] == (pytest.approx(t, abs=1e-12), "1")
        (evaluation,) = group.get_qualitative_evaluations()
        assert evaluation.value.value == (codes.PRESENT if present else codes.ABSENT)[1]
        assert group.source_images[0].referenced_sop_instance_uid == source.SOPInstanceUID
    regions = sr.content.get_planar_roi_measurement_groups()
    assert len(regions) == len(result.boxes)
    for region, (x, y, w, h) in zip(regions, result.boxes, strict=True):
        assert region.finding_type.value == codes.finding_code(result.explained_label)[1]
        corners = np.asarray(region.roi.value)
        assert corners.tolist() == [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        assert (
            region.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            == source.SOPInstanceUID
        )
    # the algorithm (TID 4019) with plain pydicom
    raw = read(out.sr)
    assert {i.TextValue for i in items(raw, "111001")} == {"chestxai"}  # Algorithm Name
    assert {i.TextValue for i in items(raw, "111003")} == {"9.9.9"}  # Algorithm Version
    parameters = {i.TextValue for i in items(raw, "111002")}  # Algorithm Parameters
    assert parameters == {"run_id=run-x", "epoch=2", "explanation=gradcam"}
    numbers = sorted(float(i.MeasuredValueSequence[0].NumericValue) for i in items(raw, codes.PROBABILITY[1]))
    assert numbers == pytest.approx(sorted(result.probabilities))
    assert items(raw, "111028"), "a source with orientation and imager spacing gets an Image Library"


def test_parametric_map_is_float32_on_the_source_grid(written):
    _, result, out = written
    pm = read(out.pmap)
    assert "FloatPixelData" in pm and "PixelData" not in pm
    values = pm.pixel_array
    assert values.dtype == np.float32 and values.shape == (ROWS, COLS)
    expected = np.clip(cv2.resize(result.heatmap, (COLS, ROWS), interpolation=cv2.INTER_LINEAR), 0, 1)
    np.testing.assert_array_equal(values, expected)
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert (mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept) == (1.0, 0.0)
    assert (
        mapping.DoubleFloatRealWorldValueFirstValueMapped,
        mapping.DoubleFloatRealWorldValueLastValueMapped,
    ) == (
        0.0,
        1.0,
    )
    assert mapping.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeValue == codes.SALIENCY[1]
    # a DX has no plane geometry: the map's nominal frame is the source's, whichever map of it
    assert pm.FrameOfReferenceUID == with_nominal_frame(read(written[0])).FrameOfReferenceUID
    again = hd.pm.ParametricMap.from_dataset(pm)
    np.testing.assert_array_equal(again.pixel_array, expected)


@needs_dciodvfy
def test_every_object_passes_dciodvfy(written):
    _, _, out = written
    for path in (out.sr, out.pmap, out.pr):
        errors, _ = dciodvfy(path)
        assert errors == [], f"{path.name}: {errors}"


def test_a_source_without_its_type2_patient_and_study_attributes_still_gets_results(tmp_path):
    """Anonymising exporters drop Patient's Birth Date, Study ID, Accession Number...: the objects
    carry them empty (the standard's value for unknown), highdicom no longer refuses the image."""
    absent = {k: None for k in TYPE2_COPIED}
    source = make_dicom(tmp_path / "src" / "anon.dcm", **absent)
    before = sha(source)
    ds = pydicom.dcmread(source)
    assert not any(k in ds for k in TYPE2_COPIED)
    out = write_results(ds, findings(boxes=((5, 6, 20, 30),)), tmp_path / "out", presentation_state=True)
    assert sha(source) == before and not any(k in ds for k in TYPE2_COPIED)  # file and data set untouched
    for path in (out.sr, out.pmap, out.pr):
        got = read(path)
        assert got.StudyInstanceUID == ds.StudyInstanceUID
        assert all(str(got.get(k, "")) == "" for k in ("PatientBirthDate", "AccessionNumber", "StudyID"))
        if shutil.which("dciodvfy"):
            errors, _ = dciodvfy(path)
            assert errors == [], f"{path.name}: {errors}"


def test_a_refused_source_writes_nothing(tmp_path):
    source = pydicom.dcmread(make_dicom(tmp_path / "mr.dcm", Modality="MR"))
    assert "modality 'MR'" in check_source(source)
    with pytest.raises(ValueError, match="--force-modality"):
        write_results(source, findings(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.realdata
@needs_dciodvfy
def test_real_jpeg_cr_objects_pass_dciodvfy_and_leave_the_source_alone(real_dicom, tmp_path):
    before = sha(real_dicom)
    source = pydicom.dcmread(real_dicom)
    assert check_source(source) is None  # JPEG baseline: decodable here
    out = write_results(
        source, findings(boxes=((100, 200, 300, 250),)), tmp_path / "out", presentation_state=True
    )
    assert sha(real_dicom) == before
    for path in (out.sr, out.pmap, out.pr):
        errors, _ = dciodvfy(path)
        assert errors == [], f"{path.name}: {errors}"
    sr, pm = read(out.sr), read(out.pmap)
    assert sr.StudyInstanceUID == pm.StudyInstanceUID == source.StudyInstanceUID
    assert pm.pixel_array.shape == (1024, 1024)
    assert "PatientAge" not in sr  # the source's '62' is not a valid AS: not carried over, not guessed
    assert not items(sr, "111028"), "no Patient Orientation / Imager Pixel Spacing: no Image Library"

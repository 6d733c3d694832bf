"""Finding codes: the standard codes agree with pydicom's copy of DICOM PS3.16, one owner per code,
synonyms share a code, everything else gets a documented local code."""

from __future__ import annotations

import pytest
from pydicom.sr.codedict import codes as dicom_codes

from chestxai.dicomout import codes
from chestxai.labels import NIH14


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (codes.FINDINGS["Pneumothorax"], dicom_codes.SCT.Pneumothorax),
        (codes.FINDINGS["Mass"], dicom_codes.SCT.Mass),
        (codes.FINDINGS["Nodule"], dicom_codes.SCT.Nodule),
        (codes.FINDINGS["Effusion"], dicom_codes.SCT.PleuralEffusion),
        (codes.FINDINGS["Cardiomegaly"], dicom_codes.SCT.Cardiomegaly),
        (codes.FINDINGS["Edema"], dicom_codes.SCT.PulmonaryEdema),
        (codes.FINDINGS["Infiltration"], dicom_codes.DCM.Infiltrate),
        (codes.FINDINGS["Lung Opacity"], dicom_codes.DCM.Opacity),
        (codes.PRESENT, dicom_codes.SCT.Present),
        (codes.ABSENT, dicom_codes.SCT.Absent),
        (codes.PROBABILITY, dicom_codes.DCM.Probability),
        (codes.THRESHOLD, dicom_codes.DCM.ThresholdValue),
        (codes.SALIENCY, dicom_codes.DCM.Saliency),
        (codes.CHEST, dicom_codes.SCT.Chest),
    ],
)
def test_standard_codes_match_dicom_ps3_16(ours, reference):
    assert (ours[0], ours[1]) == (reference.scheme_designator, reference.value)


def test_one_owner_per_code_and_synonyms_share_it():
    values = [(s, v) for s, v, _ in codes.FINDINGS.values()]
    assert len(values) == len(set(values))
    assert (
        codes.finding_code("Pleural Effusion") == codes.finding_code("effusion") == codes.FINDINGS["Effusion"]
    )
    assert codes.finding_code("Infiltrate") == codes.FINDINGS["Infiltration"]
    mapped = codes.codes_for(NIH14)  # every NIH finding coded, none shares a code
    assert len({(s, v) for s, v, _ in mapped.values()}) == len(NIH14)


def test_local_codes_for_findings_without_a_standard_code():
    assert codes.finding_code("Pleural_Thickening") == (
        "99CHESTXAI",
        "PLEURAL_THICKENI",
        "Pleural_Thickening",
    )
    assert codes.finding_code("Support Devices")[:2] == ("99CHESTXAI", "SUPPORT_DEVICES")
    with pytest.raises(ValueError, match="same code 99CHESTXAI LUNG_LESION"):
        codes.codes_for(["Lung Lesion", "lung-lesion"])

"""Coded concepts for the findings a run predicts and for the values the SR holds.

Findings are coded with SNOMED CT (``SCT``) where the DICOM standard's own content mapping
resource uses a code for that chest finding (the codes below are the ones DICOM PS3.16 lists, e.g.
in CID 6102 "Thoracic Radiographic Findings"), with DICOM's ``DCM`` codes where PS3.16 uses those,
and otherwise with the documented local scheme :data:`LOCAL_SCHEME` (``99CHESTXAI``, code = the
label's name upper-cased, ``_`` for anything else): a private scheme is what PS3.16 Section 8.2
allows for concepts without a standard code; docs/DICOM.md lists every code.

Each code has ONE owner: :data:`FINDINGS` maps a canonical finding name (``chestxai.labels``) to
its code, and a label is looked up through :func:`chestxai.labels.canonical` and the synonyms, so
``Pleural Effusion`` and ``Effusion`` get the same code and no two findings share one.
"""

from __future__ import annotations

import re
from typing import Any

from chestxai.labels import canonical, same_finding

LOCAL_SCHEME = "99CHESTXAI"
LOCAL_SCHEME_NAME = "chestxai local codes"

#: canonical finding -> (scheme, code, meaning)
FINDINGS: dict[str, tuple[str, str, str]] = {
    "Atelectasis": ("SCT", "46621007", "Atelectasis"),
    "Cardiomegaly": ("SCT", "287272002", "Cardiomegaly"),
    "Effusion": ("SCT", "60046008", "Pleural effusion"),
    "Infiltration": ("DCM", "112121", "Infiltrate"),
    "Mass": ("SCT", "4147007", "Mass"),
    "Nodule": ("SCT", "27925004", "Nodule"),
    "Pneumonia": ("SCT", "233604007", "Pneumonia"),
    "Pneumothorax": ("SCT", "36118008", "Pneumothorax"),
    "Consolidation": ("SCT", "95436008", "Lung consolidation"),
    "Edema": ("SCT", "19242006", "Pulmonary edema"),
    "Emphysema": ("SCT", "87433001", "Pulmonary emphysema"),
    "Fibrosis": ("SCT", "51615001", "Fibrosis of lung"),
    "Lung Opacity": ("DCM", "112001", "Opacity"),
    "Fracture": ("SCT", "125605004", "Fracture of bone"),
    "Tuberculosis": ("SCT", "56717001", "Tuberculosis"),
    "COVID-19": ("SCT", "840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2"),
}

#: the SR's other concepts: (scheme, code, meaning)
PROBABILITY = ("DCM", "122157", "Probability")
THRESHOLD = ("DCM", "122411", "Threshold Value")
PRESENT = ("SCT", "52101004", "Present")
ABSENT = ("SCT", "272519000", "Absent")
SALIENCY = ("DCM", "130404", "Saliency")  # the Parametric Map's quantity
HEATMAP_REGION = ("99CHESTXAI", "HEATMAP_REGION", "Heatmap region")
#: UCUM "1" (a dimensionless ratio) shown as {probability}
UNITLESS = ("UCUM", "1", "{probability}")
CHEST = ("SCT", "816094009", "Chest")
NO_UNITS = ("UCUM", "1", "no units")
REPORT_PROCEDURE = ("SCT", "399208008", "Plain chest X-ray")  # TID 1500 Procedure Reported


def local_code(label: str) -> tuple[str, str, str]:
    """``99CHESTXAI`` code of a label without a standard code: ``Pleural_Thickening`` ->
    ``PLEURAL_THICKENING`` (at most 16 characters, the SH limit of Code Value)."""
    value = re.sub(r"[^A-Z0-9]+", "_", canonical(label).upper()).strip("_")[:16] or "FINDING"
    return (LOCAL_SCHEME, value, canonical(label)[:64])


def finding_code(label: str) -> tuple[str, str, str]:
    """The coded concept of ``label``: standard where :data:`FINDINGS` has one, local otherwise."""
    for name, code in FINDINGS.items():
        if same_finding(label, name):
            return code
    return local_code(label)


def codes_for(labels: list[str] | tuple[str, ...]) -> dict[str, tuple[str, str, str]]:
    """``label -> code`` for a run's labels; refuses two labels that would share one code."""
    out = {label: finding_code(label) for label in labels}
    seen: dict[tuple[str, str], str] = {}
    for label, (scheme, value, _) in out.items():
        other = seen.setdefault((scheme, value), label)
        if other != label:
            raise ValueError(
                f"labels {other!r} and {label!r} map to the same code {scheme} {value}; "
                "rename one label (docs/DICOM.md lists the codes)"
            )
    return out


def concept(code: tuple[str, str, str]) -> Any:
    """A highdicom ``CodedConcept`` (local codes carry their scheme's name)."""
    from highdicom.sr import CodedConcept

    scheme, value, meaning = code
    if scheme == LOCAL_SCHEME:
        return CodedConcept(value, scheme, meaning, scheme_version="1")
    return CodedConcept(value, scheme, meaning)

"""The TID 1500 Measurement Report, stored as a Comprehensive 3D SR.

Content (docs/DICOM.md has the tree):

* observation context: the device observer is chestxai (its UID derived from the run id and the
  version, so one run is one device across reports);
* one TID 1501 measurement group per label of the run, for the source instance: the finding
  (``finding_type``), its qualitative evaluation ``Present`` / ``Absent`` (the run's decision at
  its operating threshold), the probability (DCM 122157, unit UCUM ``1``) and the threshold
  (DCM 122411), the algorithm (TID 4019: ``chestxai``, version, ``run_id=`` / ``epoch=`` /
  ``explanation=`` parameters);
* one TID 1410 planar ROI group per heatmap box of the explained label: a closed POLYLINE on the
  source image in SCOORD pixel coordinates (origin at the top-left corner of the first pixel, so
  box ``x, y, w, h`` has corners ``(x, y)`` and ``(x + w, y + h)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chestxai.dicomout import codes
from chestxai.dicomout.codes import concept
from chestxai.dicomout.findings import MANUFACTURER, DicomFindings

#: Series Number of the SR series (each run of predict makes a new series in the source's study)
SR_SERIES_NUMBER = 9901


def algorithm_id(findings: DicomFindings) -> Any:
    import highdicom as hd

    a = findings.algorithm
    return hd.sr.AlgorithmIdentification(name=a.name, version=a.version, parameters=a.parameters())


def device_uid(findings: DicomFindings) -> str:
    """One UID per (run, version): the same device observer across every report of a run."""
    from pydicom.uid import generate_uid

    a = findings.algorithm
    return generate_uid(entropy_srcs=[a.name, a.version, a.run_id])


def box_polyline(box: tuple[int, int, int, int]) -> np.ndarray:
    """``x, y, w, h`` (pixels, top-left origin) -> the closed rectangle's 5 SCOORD points."""
    x, y, w, h = (float(v) for v in box)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]], dtype=np.float32)


def image_library_possible(source: Any) -> bool:
    """Whether highdicom can describe ``source`` in the Image Library (TID 1601): its descriptors
    need Patient Orientation and Imager Pixel Spacing for a projection image, the plane geometry for
    a cross-sectional one. A source without them (many anonymised CR/DX exports) gets no library and
    is still referenced by every measurement group, every region and the evidence."""
    import highdicom as hd

    try:
        hd.sr.ImageLibraryEntryDescriptors(source)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return False
    return True


def build_sr(
    source: Any, findings: DicomFindings, series_uid: str, sop_uid: str, pmap: Any | None = None
) -> Any:
    """The SR for ``source`` (a pydicom data set, only read); ``pmap``: the Parametric Map written
    beside it, listed as evidence (TID 1501's Real World Value Map reference is for RWV Mapping
    objects, not Parametric Maps, so the content does not point at it)."""
    import highdicom as hd

    code_of = codes.codes_for(findings.labels)
    ref = {
        "referenced_sop_class_uid": source.SOPClassUID,
        "referenced_sop_instance_uid": source.SOPInstanceUID,
    }
    algorithm = algorithm_id(findings)
    unit = concept(codes.UNITLESS)
    groups: list[Any] = []
    for label, p, t, present in zip(
        findings.labels, findings.probabilities, findings.thresholds, findings.decisions, strict=True
    ):
        finding = concept(code_of[label])
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"finding {label}"),
                finding_type=finding,
                algorithm_id=algorithm,
                source_images=[hd.sr.SourceImageForMeasurementGroup(**ref)],
                measurements=[
                    hd.sr.Measurement(name=concept(codes.PROBABILITY), value=float(p), unit=unit),
                    hd.sr.Measurement(name=concept(codes.THRESHOLD), value=float(t), unit=unit),
                ],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        name=finding, value=concept(codes.PRESENT if present else codes.ABSENT)
                    )
                ],
            )
        )
    explained = concept(code_of[findings.explained_label])
    for k, box in enumerate(findings.boxes, start=1):
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=box_polyline(box),
            source_image=hd.sr.SourceImageForRegion(**ref),
        )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=hd.UID(), identifier=f"{findings.explained_label} heatmap region {k}"
                ),
                referenced_region=region,
                finding_type=explained,
                algorithm_id=algorithm,
                geometric_purpose=concept(codes.HEATMAP_REGION),
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(findings),
            name=findings.algorithm.name,
            manufacturer_name=MANUFACTURER,
            model_name=findings.algorithm.run_id[:64],
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=concept(codes.REPORT_PROCEDURE),
        imaging_measurements=groups,
        referenced_images=[source] if image_library_possible(source) else None,
    )
    evidence = [source] if pmap is None else [source, pmap]
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description=f"chestxai findings ({findings.algorithm.run_id})"[:64],
    )

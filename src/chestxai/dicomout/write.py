"""``write_results``: the SR, the Parametric Map and (optionally) a presentation state for one source.

Every object is a new series in the source's study (patient and study attributes copied by
highdicom from the source, new Series/SOP Instance UIDs); the source data set and file are only
read. Files are written atomically (a killed run leaves no half file) and in the order PM, SR, PR,
so an SR never names a map that is not on disk.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from chestxai.atomic import atomic_path
from chestxai.dicomout.findings import DicomFindings, WrittenObjects
from chestxai.dicomout.names import object_paths
from chestxai.dicomout.source import check_source

log = logging.getLogger(__name__)


def write_results(
    source: Any,
    result: DicomFindings,
    out_dir: Path,
    *,
    stem: str | None = None,
    presentation_state: bool = False,
    force_modality: bool = False,
    source_path: Path | None = None,
) -> WrittenObjects:
    """Write ``result`` for the pydicom data set ``source`` into ``out_dir``; the source is only read.

    ``stem`` names the files (:func:`~chestxai.dicomout.names.object_paths`; default the source's
    SOP Instance UID). Raises ``ValueError`` with :func:`check_source`'s reason for a refused source."""
    reason = check_source(source, force_modality)
    if reason:
        raise ValueError(reason)
    paths = object_paths(Path(out_dir), stem or str(source.SOPInstanceUID))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    objects = build_objects(source, result, with_map=True, presentation_state=presentation_state)
    pmap, sr, pr = objects["pmap"], objects["sr"], objects.get("pr")
    _save(pmap, paths["pmap"])
    _save(sr, paths["sr"])
    if pr is not None:
        _save(pr, paths["pr"])
    log.debug("%s: wrote %s, %s", source_path or source.SOPInstanceUID, paths["sr"], paths["pmap"])
    return WrittenObjects(
        source=source_path,
        sr=paths["sr"],
        pmap=paths["pmap"],
        pr=paths["pr"] if pr is not None else None,
        sr_sop_instance_uid=str(sr.SOPInstanceUID),
        pmap_sop_instance_uid=str(pmap.SOPInstanceUID),
    )


def build_objects(
    source: Any, result: DicomFindings, with_map: bool = True, presentation_state: bool = False
) -> dict[str, Any]:
    """``{"sr", "pmap", "pr"}`` data sets (``pmap`` / ``pr`` only when asked), not yet written.
    Without the map the SR lists only the source as evidence (what ``serve`` answers with)."""
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        # the source's own single-component Patient's Name (anonymised exports): copied as it is
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        _build(out, source, result, with_map, presentation_state)
    dropped = sorted({k for ds in out.values() for k in drop_invalid_copies(ds)})
    if dropped:  # info: one anonymising exporter can put the same bad value in every file
        log.info(
            "%s: values invalid for their VR not copied into the DICOM results: %s",
            source.get("SOPInstanceUID", "source"),
            ", ".join(f"{k}={source.get(k)!r}" for k in dropped),
        )
    declare_local_scheme(out["sr"])
    return out


def _build(out: dict, source: Any, result: DicomFindings, with_map: bool, presentation_state: bool) -> None:
    import highdicom as hd

    from chestxai.dicomout.pmap import build_pmap
    from chestxai.dicomout.source import with_type2_attributes
    from chestxai.dicomout.sr import build_sr

    source = with_type2_attributes(source)
    if with_map:
        out["pmap"] = build_pmap(source, result, hd.UID(), hd.UID())
    out["sr"] = build_sr(source, result, hd.UID(), hd.UID(), pmap=out.get("pmap"))
    if presentation_state:
        from chestxai.dicomout.pr import build_pr

        out["pr"] = build_pr(source, result, hd.UID(), hd.UID())


def to_bytes(ds: Any) -> bytes:
    """A data set as a DICOM Part 10 file's bytes."""
    import io

    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _save(ds: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


#: copied attributes that must stay (Type 2): an invalid value is emptied, not removed
_TYPE2 = frozenset(
    {"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
     "ReferringPhysicianName", "StudyID", "AccessionNumber"}
)  # fmt: skip


#: the VRs of copied patient / study values whose form is checked (ages, dates, times)
_CHECKED_VRS = frozenset({"AS", "DA", "TM", "DT"})


def drop_invalid_copies(ds: Any) -> list[str]:
    """Copied top-level values the source holds in a form its VR forbids (e.g. Patient's Age ``62``
    where AS needs ``062Y``) are not carried over: an optional one is removed, a Type 2 one emptied.
    A guess at the intended value would put words in the source's mouth. Returns the keywords."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    dropped: list[str] = []
    for elem in list(ds):
        if elem.VR not in _CHECKED_VRS or not isinstance(elem.value, str) or not elem.value:
            continue
        try:
            validate_value(elem.VR, elem.value, config.RAISE)
        except (ValueError, TypeError):
            dropped.append(elem.keyword)
            if elem.keyword in _TYPE2:
                elem.value = ""
            else:
                del ds[elem.tag]
    return dropped


def declare_local_scheme(ds: Any) -> None:
    """Coding Scheme Identification for the private ``99CHESTXAI`` scheme the SR uses."""
    from pydicom.dataset import Dataset

    from chestxai.dicomout.codes import LOCAL_SCHEME, LOCAL_SCHEME_NAME

    item = Dataset()
    item.CodingSchemeDesignator = LOCAL_SCHEME
    item.CodingSchemeName = LOCAL_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = "chestxai (docs/DICOM.md)"
    ds.CodingSchemeIdentificationSequence = [item]

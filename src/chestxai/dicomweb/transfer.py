"""WADO-RS retrieve and STOW-RS store, one instance per request, each with its own outcome.

Retrieve asks for Explicit VR Little Endian first: the server decompresses (Orthanc transcodes with
DCMTK), so an archive of JPEG-compressed radiographs - which the DICOM writer refuses as input - is
predicted all the same; a server that cannot transcode answers 406 and the instance is fetched as
stored. Each instance is written to ``SOPInstanceUID.dcm`` through :func:`chestxai.atomic.atomic_path`,
so a killed retrieve leaves no half file to be predicted.

Store sends one object per STOW-RS request and reads the server's answer for it (PS3.18 6.6.1.3:
the object is in ReferencedSOPSequence when stored, in FailedSOPSequence with a reason when not),
so every object is reported as stored or failed with the server's reason - a Parametric Map that
failed is never hidden behind its SR that went through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pydicom

from chestxai.atomic import atomic_path
from chestxai.dicomweb.connection import DicomwebError, Server
from chestxai.dicomweb.query import InstanceRef

log = logging.getLogger(__name__)

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
#: STOW-RS failure reasons (PS3.18 table 6.6.1-4 / PS3.4 C.4.2.1.4), for the per-object report
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "transfer syntax not supported",
}


def retrieve(server: Server, ref: InstanceRef, folder: Path) -> Path:
    """Fetch ``ref`` into ``folder/SOPInstanceUID.dcm`` (atomically); raises :class:`DicomwebError`."""
    what = f"retrieve instance {ref.sop}"
    fetch = server.client.retrieve_instance
    try:
        ds = server.call(
            what,
            fetch,
            ref.study,
            ref.series,
            ref.sop,
            media_types=(("application/dicom", EXPLICIT_VR_LITTLE_ENDIAN),),
        )
    except DicomwebError as exc:
        if exc.status != 406:  # 406 Not Acceptable: the server cannot transcode; take it as stored
            raise
        ds = server.call(
            what, fetch, ref.study, ref.series, ref.sop, media_types=(("application/dicom", "*"),)
        )
    if str(ds.get("SOPInstanceUID", "")) != ref.sop:
        raise DicomwebError(f"{server.url} answered {what} with instance {ds.get('SOPInstanceUID')!r}")
    dest = folder / f"{ref.sop}.dcm"
    with atomic_path(dest) as tmp:
        ds.save_as(tmp)
    return dest


@dataclass
class Stored:
    """One STOW-RS request's outcome for one object."""

    path: Path
    sop: str
    stored: bool
    reason: str = ""  # the server's reason when not stored; a warning it gave when stored


def store(server: Server, path: Path) -> Stored:
    """STOW-RS ``path`` into its study; never raises for a refusal (it is in the outcome)."""
    ds = pydicom.dcmread(path)
    sop = str(ds.SOPInstanceUID)
    try:
        answer = server.call(
            f"store {path.name}",
            server.client.store_instances,
            [ds],
            study_instance_uid=str(ds.StudyInstanceUID),
        )
    except DicomwebError as exc:
        return Stored(path, sop, False, str(exc))
    for item in answer.get("FailedSOPSequence", []):
        if str(item.get("ReferencedSOPInstanceUID", sop)) == sop:
            return Stored(path, sop, False, f"{server.url} refused it: {failure_reason(item)}")
    for item in answer.get("ReferencedSOPSequence", []):
        if str(item.get("ReferencedSOPInstanceUID", "")) == sop:
            warning = item.get("WarningReason")
            return Stored(path, sop, True, f"warning 0x{int(warning):04X}" if warning is not None else "")
    return Stored(
        path, sop, False, f"{server.url} did not confirm it (not in the answer's ReferencedSOPSequence)"
    )


def failure_reason(item: pydicom.Dataset) -> str:
    code = item.get("FailureReason")
    if code is None:
        return "no failure reason given"
    code = int(code)
    return f"0x{code:04X} {FAILURE_REASONS.get(code, 'failure')}"

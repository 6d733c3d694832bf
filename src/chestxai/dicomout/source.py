"""Which DICOM sources get DICOM results, and why not (one reason, checked before any pixel work).

A result object goes into the source's study and references the source instance, so the source
must name its study, series and instance; the Parametric Map lies on the source's pixel grid, so
the source must be one frame of decodable pixel data. The models were trained on radiographs, so
only ``CR`` / ``DX`` modalities are accepted unless forced. Compressed sources are accepted when
pydicom can decode their transfer syntax here (the objects we write are uncompressed either way;
the source itself is only referenced, never rewritten).
"""

from __future__ import annotations

from typing import Any

#: the radiograph modalities the models are meant for
MODALITIES = ("CR", "DX")
_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def check_source(ds: Any, force_modality: bool = False) -> str | None:
    """The reason ``ds`` cannot get DICOM results, or None when it can."""
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return "DICOM without pixel data (a structured report or header-only file?): no results written"
    missing = [k for k in _UIDS if not str(ds.get(k, "") or "").strip()]
    if missing:
        return f"DICOM without {', '.join(missing)}: results cannot be placed in its study"
    modality = str(ds.get("Modality", "") or "").strip()
    if modality not in MODALITIES and not force_modality:
        return (
            f"modality {modality or 'missing'!r} is not a radiograph ({'/'.join(MODALITIES)}); "
            "pass --force-modality to write results anyway"
        )
    frames = _int(ds.get("NumberOfFrames", 1))
    if frames > 1:
        return f"multi-frame DICOM ({frames} frames): results are written for single-frame images only"
    if "PixelData" in ds:
        reason = _undecodable(ds)
        if reason:
            return reason
    return None


def _undecodable(ds: Any) -> str | None:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not ts:
        return None  # a raw data set: read as implicit VR little endian, uncompressed
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    uid = UID(ts)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        return (
            f"transfer syntax {uid.name} ({uid}) cannot be decoded here; "
            "decompress it first (e.g. dcmdjpeg / gdcmconv --raw)"
        )
    return None


def _int(value: Any) -> int:
    try:
        return int(value or 1)
    except (TypeError, ValueError):
        return 1


#: Patient / General Study attributes (type 2: present, possibly empty, in a conformant image) that
#: highdicom copies from the source into every object; anonymising exporters often drop them.
TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def with_type2_attributes(source: Any) -> Any:
    """``source`` itself when it has every attribute of :data:`TYPE2_COPIED`, else a copy (the same
    elements, the source untouched) with the missing ones present and empty - the value the standard
    gives an unknown type 2 attribute. Without it highdicom stops at the first one absent (a DX with
    no Patient's Birth Date was refused whole)."""
    from pydicom.dataset import Dataset

    missing = [k for k in TYPE2_COPIED if k not in source]
    if not missing:
        return source
    copy = Dataset()
    for elem in source:
        copy.add(elem)
    if hasattr(source, "file_meta"):
        copy.file_meta = source.file_meta
    for keyword in missing:
        setattr(copy, keyword, "")
    return copy

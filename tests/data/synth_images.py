"""Synthetic image files for the data tests (written into tmp_path; nothing here is real data).

``write_dicom`` builds a DICOM with pydicom from an array: when the array comes from a real PNG,
the result is a *derived* DICOM (our re-encoding, not a file from any scanner).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def gradient(h: int = 48, w: int = 64, hi: int = 255, dtype=np.uint8) -> np.ndarray:
    """A left-to-right ramp with a brighter square, so orientation and scaling are checkable."""
    a = np.tile(np.linspace(0, hi * 0.6, w), (h, 1))
    a[h // 4 : h // 2, w // 4 : w // 2] = hi
    return a.round().astype(dtype)


def write_png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    """Always PNG, whatever the file name says (tests of magic-byte detection rely on it)."""
    (Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)).save(path, format="PNG")
    return path


def write_dicom(
    path: Path,
    arr: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    pixels: bool = True,
    compress: str | None = None,
    **attrs,
) -> Path:
    """A minimal secondary-capture DICOM holding ``arr`` (uint8/uint16), optional extra attributes."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = "synthetic"
    ds.Modality = "OT"
    if pixels:
        bits = bits_stored or (8 if arr.dtype == np.uint8 else 16)
        ds.set_pixel_data(np.ascontiguousarray(arr), photometric, bits)
    for k, v in attrs.items():
        setattr(ds, k, v)
    if compress:
        ds.compress(compress)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path

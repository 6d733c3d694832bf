"""Derived DICOM sources built in the tests, synthetic findings and the dciodvfy check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from chestxai.dicomout import AlgorithmIdentification, DicomFindings

DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
ROWS, COLS = 90, 70  # not square, not the model grid


def make_dicom(path: Path, rows: int = ROWS, cols: int = COLS, seed: int = 0, **attrs) -> Path:
    """A derived uncompressed 16-bit DX (12 bits stored) with the attributes a real one has; ``attrs``
    override or (value None) remove attributes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 4096, size=(rows, cols), dtype=np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DX_IMAGE_STORAGE
    ds.SOPClassUID = DX_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Derived", "P-1", "19700101", "F"
    ds.PatientAge = "055Y"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240102", "101500", "S1", "A1"
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "DX", 1, 1
    ds.BodyPartExamined, ds.ViewPosition = "CHEST", "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    for key, value in attrs.items():
        if value is None:
            if key in ds:
                del ds[key]
        else:
            setattr(ds, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def findings(
    labels=("Atelectasis", "Effusion", "Mass"), explained="Effusion", boxes=((5, 6, 20, 30),), size=32
):
    rng = np.random.default_rng(1)
    return DicomFindings(
        labels=tuple(labels),
        probabilities=tuple(float(v) for v in np.linspace(0.1, 0.9, len(labels))),
        thresholds=tuple(0.5 for _ in labels),
        decisions=tuple(bool(v > 0.5) for v in np.linspace(0.1, 0.9, len(labels))),
        heatmap=rng.random((size, size)).astype(np.float32),
        explained_label=explained,
        boxes=tuple(boxes),
        algorithm=AlgorithmIdentification(version="9.9.9", run_id="run-x", epoch=2, method="gradcam"),
    )


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) dciodvfy reports for ``path``; the warnings are printed for the test log."""
    tool = shutil.which("dciodvfy")
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    lines = (out.stdout + out.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    warnings = [line for line in lines if line.startswith("Warning")]
    print(f"dciodvfy {path.name}: {len(errors)} error(s), {len(warnings)} warning(s)")
    for line in warnings + errors:
        print("  " + line)
    return errors, warnings


def read(path: Path) -> Dataset:
    return pydicom.dcmread(path)

"""DICOM objects from chestxai results: a TID 1500 Comprehensive 3D SR and a float32 Parametric Map per
source image, written with highdicom from the same predictions and heatmaps the CSV/PNG path writes.

Public: :func:`write_results` (one source -> files), :func:`check_source` (why a source is refused),
:class:`DicomFindings` / :class:`AlgorithmIdentification` (what is written), :class:`WrittenObjects`.
highdicom is the ``[dicom]`` extra: it is imported only when an object is written."""

from chestxai.dicomout.findings import AlgorithmIdentification, DicomFindings, WrittenObjects
from chestxai.dicomout.names import object_paths
from chestxai.dicomout.source import MODALITIES, check_source
from chestxai.dicomout.write import build_objects, to_bytes, write_results

__all__ = [
    "MODALITIES",
    "AlgorithmIdentification",
    "DicomFindings",
    "WrittenObjects",
    "build_objects",
    "check_source",
    "object_paths",
    "to_bytes",
    "write_results",
]

"""``write_results``: the SR, the Parametric Map and (optionally) a presentation state for one source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    """Write ``result`` for the pydicom data set ``source`` into ``out_dir``; the source is only read."""
    reason = check_source(source, force_modality)
    if reason:
        raise ValueError(reason)
    raise NotImplementedError("dicom writer: in progress")  # interface first; the writer follows
    paths = object_paths(Path(out_dir), stem or str(source.SOPInstanceUID))  # noqa: F841

"""The one place that names the DICOM files written for a source: ``STEM.sr.dcm``, ``STEM.pm.dcm``
and ``STEM.pr.dcm`` (presentation state) in the output folder. ``predict`` passes the stem of the
source's overlay (``000003_name``); without one the source's SOP Instance UID is the stem."""

from __future__ import annotations

from pathlib import Path

from chestxai.rundir import safe_name

SR_SUFFIX = ".sr.dcm"
PMAP_SUFFIX = ".pm.dcm"
PR_SUFFIX = ".pr.dcm"


def object_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """``{"sr", "pmap", "pr"}`` -> the file each object of ``stem`` is written to."""
    base = Path(out_dir) / safe_name(stem)
    return {
        "sr": base.with_name(base.name + SR_SUFFIX),
        "pmap": base.with_name(base.name + PMAP_SUFFIX),
        "pr": base.with_name(base.name + PR_SUFFIX),
    }

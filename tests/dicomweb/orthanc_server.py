"""The tests' Orthanc: :func:`chestxai.testing_orthanc.orthanc_server` (the launcher the round-trip
benchmark uses too) as a fixture body that skips with the reason when Orthanc or its DICOMweb plugin
is absent and fails with the server's log when it does not start."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from chestxai.testing_orthanc import Orthanc, free_port, missing_reason, orthanc_server

__all__ = ["Orthanc", "free_port", "start_orthanc"]


def start_orthanc(folder: Path, users: dict[str, str] | None = None):
    """Start Orthanc in ``folder``; a generator yielding :class:`Orthanc`, stopping it at the end."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with ExitStack() as stack:
        try:
            server = stack.enter_context(orthanc_server(folder, users))
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server

"""Debian's Orthanc with its DICOMweb plugin on a free loopback port, for the DICOMweb tests and
``benchmarks/dicomweb_roundtrip.py`` (like :mod:`chestxai.testing`, kept in the package so both
import one launcher): the config is written into the caller's folder (storage there too, no DICOM
port, loopback only), and the process is stopped when the ``with`` block ends, whatever happened
inside it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN_NAME = "libOrthancDicomWeb.so"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dicomweb_plugin() -> Path | None:
    """The plugin's shared object, as the orthanc-dicomweb package lists it (``dpkg -L``)."""
    listed: list[str] = []
    if shutil.which("dpkg"):
        done = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True)
        listed = done.stdout.splitlines() if done.returncode == 0 else []
    candidates = [Path(p) for p in listed if Path(p).name.startswith(PLUGIN_NAME)]
    candidates += sorted(Path("/usr/share/orthanc/plugins").glob(f"{PLUGIN_NAME}*"))
    return next((p for p in candidates if p.is_file()), None)


def missing_reason() -> str | None:
    """Why Orthanc with DICOMweb cannot be started here (what to install), or None when it can."""
    if not Path(ORTHANC).is_file():
        return f"{ORTHANC} is absent: apt-get install orthanc orthanc-dicomweb (make test does, as root)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is absent: apt-get install orthanc-dicomweb"
    return None


@dataclass
class Orthanc:
    root: str  # http://127.0.0.1:PORT
    dicomweb: str  # ROOT/dicom-web
    log: Path


def _answers(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` (a 401 of a server with users counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@contextmanager
def orthanc_server(
    folder: Path, users: dict[str, str] | None = None, name: str = "chestxai-test"
) -> Iterator[Orthanc]:
    """Orthanc serving DICOMweb from ``folder`` until the block ends. RuntimeError when it is not
    installed (:func:`missing_reason`) or does not answer within :data:`START_TIMEOUT_S` (with the
    tail of its log)."""
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    port = free_port()
    config = {
        "Name": name,
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "DicomServerEnabled": False,  # no DICOM (DIMSE) port at all
        "RemoteAccessAllowed": False,  # loopback only
        "AuthenticationEnabled": bool(users),
        "RegisteredUsers": users or {},
        "Plugins": [str(dicomweb_plugin())],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log = folder / "orthanc.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=out, stderr=subprocess.STDOUT)
    try:
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"{root}/system"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Orthanc did not start on port {port} (exit {proc.poll()}):\n{tail}")
            time.sleep(0.1)
        yield Orthanc(root, f"{root}/dicom-web", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

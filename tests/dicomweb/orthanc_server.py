"""Debian's Orthanc with its DICOMweb plugin on a free loopback port, for the tests: the config is
written into the test's folder (storage there too, no DICOM port, loopback only), the process is
stopped whatever the test did. Skips with the reason when Orthanc or the plugin is absent."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def start_orthanc(folder: Path, users: dict[str, str] | None = None):
    """Start Orthanc in ``folder``; a generator yielding :class:`Orthanc`, stopping it at the end."""
    plugin = dicomweb_plugin()
    if not Path(ORTHANC).is_file():
        pytest.skip(
            f"{ORTHANC} is absent: apt-get install orthanc orthanc-dicomweb (make test does, as root)"
        )
    if plugin is None:
        pytest.skip("the Orthanc DICOMweb plugin is absent: apt-get install orthanc-dicomweb")
    port = free_port()
    config = {
        "Name": "chestxai-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "DicomServerEnabled": False,  # no DICOM (DIMSE) port at all
        "RemoteAccessAllowed": False,  # loopback only
        "AuthenticationEnabled": bool(users),
        "RegisteredUsers": users or {},
        "Plugins": [str(plugin)],
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
                pytest.fail(f"Orthanc did not start on port {port} (exit {proc.poll()}):\n{tail}")
            time.sleep(0.1)
        yield Orthanc(root, f"{root}/dicom-web", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

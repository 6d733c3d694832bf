"""What a public-facing service refuses, and how: size, type, decompression bombs, time.

* **Upload size** (413): ``Content-Length`` is checked before the body is read, and the body is
  counted while it streams (a client may lie or send chunked), stopping at the limit.
* **Nothing written outside our temporary folder**: the multipart body is parsed as it streams
  (python-multipart, the parser Starlette uses) straight into one file inside the service's
  temporary folder, deleted when the request ends; the folder is removed at shutdown. (Starlette's
  own form parsing would spool large uploads into the system temp folder.)
* **Declared type vs content** (415): the file's magic bytes decide what it is
  (:func:`chestxai.data.decode.sniff_format`); PNG, JPEG and DICOM are accepted, and a declared
  ``Content-Type`` or file extension that names another of these is refused, as is content that
  is none of them (a text file named ``.png``).
* **Decompression bombs** (413): the project's decoder checks width x height against
  ``max_pixels`` and the decoded samples' bytes against ``max_decode_bytes`` from the header,
  before pixel data is decoded or a deflated DICOM inflated (:class:`DecodeSettings`); at most
  ``max_decodes`` uploads decode at once (:mod:`.decode_gate`; 503 when the line is full).
* **One deadline per request** (504), from its headers to its answer: receiving a slow upload
  counts (:mod:`.deadline`); a connection still sending its headers at the deadline is closed.
* **Slow clients cannot hoard the server** (503 + Retry-After): at most ``max_uploads`` uploads
  at once and ``max_temp_bytes`` in the temporary folder (the declared ``Content-Length`` is
  reserved up front), at most ``max_connections`` connections (uvicorn's ``limit_concurrency``);
  on SIGTERM, requests get ``graceful_s`` seconds to finish before they are cancelled.
* **Heavy work queues apart** (503): explanations and uncertainty wait in a small queue of their
  own (``heavy_queue`` per model, :mod:`.heavy`), so plain predictions are not stuck behind them;
  ``passes`` is capped at ``max_passes``; a timed-out request's passes stop.
* **Host names** (400): only ``allowed_hosts`` in the ``Host`` header (loopback names by default),
  so a page on another site cannot reach the service through DNS rebinding (:mod:`.hosts`).
* **Stale temporary folders**: a folder left by a server that was killed (its pid is gone) is
  removed when the next one starts; only folders named by this service and owned by this user.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chestxai.atomic import pid_alive
from chestxai.data.decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DecodeError,
    DecodeSettings,
    ImageTooLargeError,
    sniff_format,
)

log = logging.getLogger(__name__)

MB = 1024 * 1024
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ACCEPTED = ("png", "jpeg", "dicom")
_DECLARED = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "application/dicom": "dicom",
    "application/dicom+binary": "dicom",
}
_EXTENSIONS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".dic": "dicom",
}
_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "dicom": "DICOM",
    "other": "not a PNG, JPEG or DICOM image",
    "empty": "empty",
}


class RequestError(Exception):
    """A refused request: HTTP ``status`` and a message saying what to change."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


@contextmanager
def decode_refusals(what: str) -> Iterator[None]:
    """The decoder's refusals as the answers every endpoint gives: 413 for an image over the pixel or
    byte limits (a decompression bomb), 422 for one that cannot be read (``what`` says which step:
    "decode the image", "read the DICOM")."""
    try:
        yield
    except ImageTooLargeError as exc:
        raise RequestError(413, f"image refused: {exc.reason}") from None
    except DecodeError as exc:
        raise RequestError(422, f"cannot {what}: {exc.reason}") from None


def busy(detail: str) -> RequestError:
    """503 with Retry-After: the service is at one of its limits; the same request may pass later."""
    return RequestError(503, detail, {"Retry-After": "1"})


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 25 * MB
    timeout_s: float = 60.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_queue: int = 256  # requests waiting for a forward; more get 503
    max_batch: int = 32  # concurrent requests merged into one forward
    max_wait_ms: float = 2.0  # how long a forward waits for more requests to join it
    max_uploads: int = 64  # uploads being received or decoded at once; more get 503
    max_temp_bytes: int = 256 * MB  # bytes of uploads in the temporary folder at once; more get 503
    max_connections: int = 512  # open connections (uvicorn's limit_concurrency); more get 503
    graceful_s: float = 5.0  # on SIGTERM, how long running requests may finish before they are cancelled
    max_passes: int = 50  # uncertainty passes per request (the query's passes=)
    heavy_queue: int = 4  # explain/uncertainty requests waiting per model besides the one running
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host header names accepted ("*": any)
    max_decode_bytes: int = DEFAULT_MAX_BYTES  # decoded samples of one image (--max-decode-mb)
    max_decodes: int = 2  # uploads decoded at once (--max-decodes); the rest wait in the queue

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1024:
            raise ValueError(f"--max-upload-mb must allow at least 1 KB, got {self.max_upload_bytes} bytes")
        if self.timeout_s <= 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {self.timeout_s}")
        if self.max_queue < 1 or self.max_batch < 1 or self.max_wait_ms < 0:
            raise ValueError("--max-queue and --max-batch must be >= 1 and --max-wait-ms >= 0")
        if self.max_uploads < 1 or self.max_connections < 1 or self.heavy_queue < 0:
            raise ValueError(
                f"--max-uploads and --max-connections must be >= 1 and --heavy-queue >= 0, got "
                f"{self.max_uploads}, {self.max_connections} and {self.heavy_queue}"
            )
        if self.max_temp_bytes < self.max_upload_bytes:
            raise ValueError(
                f"--max-temp-mb ({self.max_temp_bytes / MB:g}) must hold at least one upload "
                f"(--max-upload-mb {self.max_upload_bytes / MB:g})"
            )
        if self.graceful_s < 0:
            raise ValueError(f"--graceful-timeout must be >= 0 seconds, got {self.graceful_s}")
        if not 2 <= self.max_passes <= 200:
            raise ValueError(f"--max-passes must be between 2 and 200, got {self.max_passes}")
        if not self.allowed_hosts or any(not h or h != h.strip() for h in self.allowed_hosts):
            raise ValueError(f"--allowed-hosts needs host names (or '*'), got {list(self.allowed_hosts)}")
        if self.max_decodes < 1:
            raise ValueError(f"--max-decodes must be >= 1, got {self.max_decodes}")
        _ = self.decode  # the decoder's own range checks (--max-pixels, --max-decode-mb)

    @property
    def decode(self) -> DecodeSettings:
        return DecodeSettings(max_pixels=self.max_pixels, max_bytes=self.max_decode_bytes)


def check_content_length(header: str | None, limits: Limits) -> int | None:
    """The declared body size (None when not declared); 400 / 413 for a bad or too large one."""
    if header is None:
        return None
    try:
        length = int(header)
    except ValueError:
        raise RequestError(400, f"Content-Length {header!r} is not a number") from None
    if length > limits.max_upload_bytes + 64 * 1024:  # multipart headers add a little
        raise RequestError(413, too_large(limits))
    return max(length, 0)


def too_large(limits: Limits) -> str:
    return (
        f"upload larger than the service's limit of {limits.max_upload_bytes / MB:g} MB "
        "(the server's --max-upload-mb); send a smaller file"
    )


def check_type(path: Path, filename: str | None, declared: str | None) -> str:
    """The file's format from its bytes; refuses (415) content that is not an accepted image or
    disagrees with the declared ``Content-Type`` / extension."""
    with open(path, "rb") as f:
        head = f.read(132)
    # the extension is only a claim: sniff as if the file had none, so only bytes decide
    kind = sniff_format(head, Path("upload"))
    claimed = _DECLARED.get((declared or "").split(";")[0].strip().lower())
    by_name = _EXTENSIONS.get(Path(filename or "").suffix.lower())
    if kind == "other" and (claimed == "dicom" or by_name == "dicom"):
        kind = sniff_format(head, Path("upload.dcm"))  # a raw DICOM data set without preamble
    if kind == "empty":
        raise RequestError(422, f"{filename or 'the upload'} is empty (0 bytes)")
    if kind not in ACCEPTED:
        raise RequestError(
            415, f"{filename or 'the upload'}: content is {_NAMES[kind]}; upload a PNG, JPEG or DICOM file"
        )
    for what, fmt in (("declared Content-Type", claimed), ("file extension", by_name)):
        if fmt is not None and fmt != kind:
            raise RequestError(
                415,
                f"{filename or 'the upload'}: {what} says {_NAMES[fmt]} but the content is {_NAMES[kind]}; "
                "send the file under its real type",
            )
    return kind


TEMP_PREFIX = "chestxai-serve-"
_OWNED = re.compile(re.escape(TEMP_PREFIX) + r"pid(\d+)-")


class TempFolder:
    """The one folder the service writes to (uploads being decoded); removed by :meth:`close`.

    Its name carries the server's pid (``chestxai-serve-pid<PID>-...``), so the next server can
    tell a folder left by a killed one (pid gone) from a live server's: see :func:`clean_stale`."""

    def __init__(self) -> None:
        clean_stale(Path(tempfile.gettempdir()))
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}pid{os.getpid()}-")
        self.path = Path(self._tmp.name)

    def new_file(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.path, prefix="upload-")
        os.close(fd)
        return Path(name)

    def close(self) -> None:
        self._tmp.cleanup()


def clean_stale(root: Path) -> list[Path]:
    """Remove the temporary folders in ``root`` that a killed server left (uploads of patients'
    images): only folders named ``chestxai-serve-pid<PID>-*``, owned by this user, whose ``PID``
    is no longer running. Returns what was removed."""
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _OWNED.match(entry.name)
        if m is None or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        try:
            st = entry.lstat()
        except OSError:
            continue
        if not entry.is_dir() or entry.is_symlink() or st.st_uid != os.getuid():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.warning(
            "removed %s, left by a chestxai serve (pid %s) that is no longer running", entry, m.group(1)
        )
        removed.append(entry)
    return removed

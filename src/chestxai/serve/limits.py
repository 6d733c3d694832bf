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
* **Per-request timeout** (504) around decode + forward + explanation.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from chestxai.data.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DecodeSettings, sniff_format

MB = 1024 * 1024
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

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 25 * MB
    timeout_s: float = 60.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_queue: int = 256  # requests waiting for a forward; more get 503
    max_batch: int = 32  # concurrent requests merged into one forward
    max_wait_ms: float = 2.0  # how long a forward waits for more requests to join it
    max_decode_bytes: int = DEFAULT_MAX_BYTES  # decoded samples of one image (--max-decode-mb)
    max_decodes: int = 2  # uploads decoded at once (--max-decodes); the rest wait in the queue

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1024:
            raise ValueError(f"--max-upload-mb must allow at least 1 KB, got {self.max_upload_bytes} bytes")
        if self.timeout_s <= 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {self.timeout_s}")
        if self.max_queue < 1 or self.max_batch < 1 or self.max_wait_ms < 0:
            raise ValueError("--max-queue and --max-batch must be >= 1 and --max-wait-ms >= 0")
        if self.max_decodes < 1:
            raise ValueError(f"--max-decodes must be >= 1, got {self.max_decodes}")
        _ = self.decode  # the decoder's own range checks (--max-pixels, --max-decode-mb)

    @property
    def decode(self) -> DecodeSettings:
        return DecodeSettings(max_pixels=self.max_pixels, max_bytes=self.max_decode_bytes)


def check_content_length(header: str | None, limits: Limits) -> None:
    if header is None:
        return
    try:
        length = int(header)
    except ValueError:
        raise RequestError(400, f"Content-Length {header!r} is not a number") from None
    if length > limits.max_upload_bytes + 64 * 1024:  # multipart headers add a little
        raise RequestError(413, too_large(limits))


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


class TempFolder:
    """The one folder the service writes to (uploads being decoded); removed by :meth:`close`."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="chestxai-serve-")
        self.path = Path(self._tmp.name)

    def new_file(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.path, prefix="upload-")
        os.close(fd)
        return Path(name)

    def close(self) -> None:
        self._tmp.cleanup()

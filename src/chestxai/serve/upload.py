"""Stream one multipart upload (field ``file``) into a file of the service's temporary folder.

Parsing as the body arrives means the size limit holds however the client sends (no trust in
``Content-Length``), and nothing is spooled anywhere else. Only the ``file`` part is kept; other
fields are ignored, and a second ``file`` part is refused.

:class:`UploadBudget` caps what slow or stalled clients can hold: uploads in flight and bytes in
the temporary folder (503 + Retry-After past either), so eight stalled 24 MB uploads cannot fill
the disk; the request deadline (:mod:`.deadline`) then closes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MAX_BOUNDARY_LENGTH, MultipartParser, parse_options_header

from chestxai.serve.limits import MB, Limits, RequestError, busy, too_large

FIELD = "file"


@dataclass
class Upload:
    path: Path
    filename: str | None
    content_type: str | None
    size: int


class UploadBudget:
    """Uploads in flight and their bytes in the temporary folder, against ``max_uploads`` and
    ``max_temp_bytes``. Used from the event loop only (no lock needed)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.uploads = 0
        self.bytes = 0

    def open(self) -> UploadTicket:
        if self.uploads >= self.limits.max_uploads:
            raise busy(
                f"{self.uploads} uploads are already being received (the server's --max-uploads); "
                "retry in a moment"
            )
        self.uploads += 1
        return UploadTicket(self)


class UploadTicket:
    """One request's share of the :class:`UploadBudget`; :meth:`close` gives it back."""

    def __init__(self, budget: UploadBudget):
        self.budget = budget
        self.held = 0
        self.closed = False

    def hold(self, total: int) -> None:
        """Reserve up to ``total`` bytes for this upload (503 when the folder's budget is spent)."""
        more = total - self.held
        if more <= 0:
            return
        b = self.budget
        if b.bytes + more > b.limits.max_temp_bytes:
            raise busy(
                f"uploads being received already hold {b.bytes / MB:.1f} MB of the server's "
                f"{b.limits.max_temp_bytes / MB:g} MB (--max-temp-mb); retry in a moment"
            )
        b.bytes += more
        self.held = total

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.budget.bytes -= self.held
            self.budget.uploads -= 1


async def receive_upload(
    stream: AsyncIterator[bytes],
    content_type: str | None,
    target: Path,
    limits: Limits,
    ticket: UploadTicket | None = None,
) -> Upload:
    """Write the ``file`` part of a ``multipart/form-data`` body to ``target`` (413 past the limit;
    503 when ``ticket`` cannot hold the bytes received)."""
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise RequestError(
            422, "send the image as multipart/form-data in the field 'file' (e.g. curl -F file=@xray.png)"
        )
    boundary = params[b"boundary"]
    if not 1 <= len(boundary) <= MAX_BOUNDARY_LENGTH:  # the parser's own limit (RFC 2046 says 70)
        raise RequestError(
            400,
            f"the multipart boundary is {len(boundary)} characters long; the service takes 1 to "
            f"{MAX_BOUNDARY_LENGTH} (RFC 2046 allows 70): let the HTTP client choose it",
        )
    state: dict = {"headers": {}, "field": b"", "value": b"", "current": None, "found": None, "size": 0}
    out = open(target, "wb")  # noqa: SIM115 - closed in finally, written from callbacks

    def on_part_begin() -> None:
        state["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"].decode("latin-1")
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get("content-disposition", ""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        is_file = name == FIELD
        if is_file and state["found"] is not None:
            raise RequestError(422, "send one file per request (the field 'file' appeared twice)")
        state["current"] = FIELD if is_file else None
        if is_file:
            raw = disp.get(b"filename")
            state["found"] = {
                "filename": raw.decode("utf-8", "replace") if raw is not None else None,
                "content_type": state["headers"].get("content-type"),
            }

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["current"] != FIELD:
            return
        state["size"] += end - start
        if state["size"] > limits.max_upload_bytes:
            raise RequestError(413, too_large(limits))
        out.write(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > limits.max_upload_bytes + 64 * 1024:  # bodies full of other fields count too
                raise RequestError(413, too_large(limits))
            if ticket is not None:
                ticket.hold(total)
            try:
                parser.write(chunk)
            except RequestError:
                raise
            except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors
                raise RequestError(422, f"malformed multipart body ({exc})") from None
        parser.finalize()
    finally:
        out.close()
    if state["found"] is None:
        raise RequestError(422, "no field 'file' in the form; upload the image as the field 'file'")
    return Upload(target, state["found"]["filename"], state["found"]["content_type"], state["size"])

"""One deadline per request, from its first header byte to its answer (504), for slow clients.

Why: the service's ``--timeout`` used to start after the upload had arrived, so a client that
sent its body (or its headers) one byte at a time held a connection, a temporary file and a task
for as long as it liked. Two pieces close that:

* :class:`DeadlineMiddleware` (ASGI) runs the whole request - receiving the body included -
  under ``asyncio.timeout``; at the deadline the app is cancelled (its ``finally`` blocks delete
  the upload and stop heavy work) and the client gets 504 with ``Connection: close``, so uvicorn
  closes the connection. A response already under way is left to uvicorn, which closes it.
* :func:`header_timeout_protocol`: uvicorn has no timeout for a request's headers (the app is not
  called until they are complete, and ``timeout_keep_alive`` is reset by every byte). The
  protocol class returned here (uvicorn's own, subclassed; passed as ``http=``) arms a timer when
  a connection opens and after each response, disarms it when a request's headers are complete,
  and closes the connection when it fires first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger(__name__)


def timeout_detail(seconds: float) -> str:
    return f"the request took longer than the service's {seconds:g} s limit (the server's --timeout)"


class DeadlineMiddleware:
    """ASGI middleware: every HTTP request finishes within ``seconds`` or gets 504."""

    def __init__(self, app: Any, seconds: float):
        self.app = app
        self.seconds = float(seconds)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds) as deadline:
                await self.app(scope, receive, tracked)
        except TimeoutError:
            if not deadline.expired():
                raise  # the app's own TimeoutError, not ours
            log.warning(
                "%s %s cut at the %g s deadline", scope.get("method"), scope.get("path"), self.seconds
            )
            if started:
                return  # uvicorn closes a connection whose response did not finish
            body = json.dumps({"detail": timeout_detail(self.seconds)}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 504,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def header_timeout_protocol(seconds: float) -> type:
    """uvicorn's HTTP protocol class (the one ``http="auto"`` picks) with a deadline on each
    request's headers: a connection that has not sent complete headers ``seconds`` after it opened
    (or after its previous response) is closed."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        header_timeout = float(seconds)

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._seen_cycle = None
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

        def _disarm(self) -> None:
            timer = getattr(self, "_header_timer", None)
            if timer is not None:
                timer.cancel()
            self._header_timer = None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and self.cycle is not self._seen_cycle:
                self._seen_cycle = self.cycle  # a new request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers get the same deadline

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _headers_late(self) -> None:
            self._header_timer = None
            in_request = self.cycle is not None and not self.cycle.response_complete
            if not in_request and not self.transport.is_closing():
                log.warning("closed a connection that sent no complete request headers in %g s", seconds)
                self.transport.close()

    return HeaderDeadlineProtocol

"""One DICOMweb server: credentials from the environment, TLS verified, timeouts, bounded retries,
and one clear line for every way a server can refuse.

dicomweb-client does the protocol (QIDO-RS, WADO-RS, STOW-RS); this module decides how hard to try
and what to tell the user. Its own retrying covers four status codes and no connection errors, so it
is switched off and every request goes through :meth:`Server.call`: connection errors, timeouts,
429 and 5xx answers are tried again ``retries`` times with a doubling wait; any other answer
(401, 403, 404, 400...) is final at once, because asking again cannot change it. A failure becomes a
:class:`DicomwebError` whose message is one line naming the server, the status and the fix.

Credentials never come from flags (they would sit in the shell history and ``ps``): a bearer token in
``CHESTXAI_DICOMWEB_TOKEN``, or basic auth in ``CHESTXAI_DICOMWEB_USER`` and
``CHESTXAI_DICOMWEB_PASSWORD``. TLS certificates are verified; ``--ca-bundle FILE`` names the CA of a
server whose certificate a private CA signed. There is deliberately no switch that turns
verification off.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from chestxai.errors import UserError

log = logging.getLogger(__name__)

TOKEN_ENV = "CHESTXAI_DICOMWEB_TOKEN"
USER_ENV = "CHESTXAI_DICOMWEB_USER"
PASSWORD_ENV = "CHESTXAI_DICOMWEB_PASSWORD"
#: answers worth asking again: too many requests, and the server's own failures
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: the wait before the first retry (doubled after each), and the longest wait
BACKOFF_S = 0.5
MAX_WAIT_S = 30.0
MAX_RETRIES = 10
FAILED_SOP_SEQUENCE, FAILURE_REASON = "00081198", "00081197"  # DICOM JSON tags of a STOW-RS answer

T = TypeVar("T")


class DicomwebError(UserError):
    """A request the server refused or never answered; the message is one line with the fix.

    ``status`` is the HTTP status of the last answer (None when no answer came)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServerSettings:
    url: str  # the DICOMweb root, e.g. http://localhost:8042/dicom-web
    timeout: float = 30.0  # seconds for a connection and for each read
    retries: int = 3  # further tries after a connection error, timeout, 429 or 5xx
    ca_bundle: Path | None = None  # PEM file of the CA that signed the server's certificate
    backoff: float = BACKOFF_S  # seconds before the first retry, doubled after each

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(
                f"--url {self.url!r} is not an http(s) URL; give the DICOMweb root, e.g. "
                "http://localhost:8042/dicom-web"
            )
        if not self.timeout > 0:
            raise UserError(f"--timeout must be > 0 seconds, got {self.timeout}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise UserError(f"--retries must be in [0, {MAX_RETRIES}], got {self.retries}")
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise UserError(f"--ca-bundle {self.ca_bundle}: no such file (a PEM file of CA certificates)")


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer TOKEN`` on every request (an OAuth2 / OIDC access token)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def credentials(environ: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """``(auth for requests, what it is)`` from the environment: a bearer token, basic auth, or none."""
    env = os.environ if environ is None else environ
    token, user, password = env.get(TOKEN_ENV, ""), env.get(USER_ENV, ""), env.get(PASSWORD_ENV, "")
    if token and (user or password):
        raise UserError(f"set either {TOKEN_ENV} (bearer) or {USER_ENV}/{PASSWORD_ENV} (basic), not both")
    if token:
        return BearerAuth(token), f"bearer token from {TOKEN_ENV}"
    if bool(user) != bool(password):
        missing = PASSWORD_ENV if user else USER_ENV
        raise UserError(f"basic auth needs both {USER_ENV} and {PASSWORD_ENV}; {missing} is not set")
    if user:
        return (user, password), f"basic auth for {user!r} from {USER_ENV}/{PASSWORD_ENV}"
    return None, "no credentials"


def open_session(settings: ServerSettings, environ: Mapping[str, str] | None = None) -> requests.Session:
    """A session with the environment's credentials and the CA bundle (verification always on)."""
    session = requests.Session()
    auth, what = credentials(environ)
    session.auth = auth
    if auth is not None and urlsplit(settings.url).scheme == "http":
        log.warning("sending credentials (%s) over plain http to %s; use https", what, settings.url)
    if settings.ca_bundle is not None:
        session.verify = str(settings.ca_bundle)
    return session


class Server:
    """The DICOMweb client with chestxai's retries and messages (``sleep`` is injectable for tests)."""

    def __init__(
        self,
        settings: ServerSettings,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            from dicomweb_client import DICOMwebClient
        except ImportError as exc:
            raise UserError("chestxai dicomweb needs dicomweb-client: pip install 'chestxai[dicom]'") from exc
        settings.check()
        self.settings = settings
        self.url = settings.url.rstrip("/")
        session = session or open_session(settings)
        self.authenticated = session.auth is not None  # a 401 then means "not accepted", not "needed"
        self.client = DICOMwebClient(self.url, session=session, timeout=settings.timeout)
        self.client.set_http_retry_params(retry=False)  # ours cover connection errors and 5xx too
        self.sleep = sleep
        self.attempts = 0  # requests sent, retries included (reported in the summary)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with bounded retries; ``what`` ("search for series of study X")
        goes into the message of the :class:`DicomwebError` raised when it fails for good."""
        wait = self.settings.backoff
        tries = self.settings.retries + 1
        for attempt in range(1, tries + 1):
            self.attempts += 1
            try:
                return fn(*args, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise DicomwebError(
                    f"{self.url}: TLS certificate not verified ({_short(exc)}) while trying to {what}; "
                    "pass --ca-bundle FILE with the CA that signed the server's certificate"
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = DicomwebError(self._unreachable(exc, what, attempt))
            except requests.HTTPError as exc:
                response = exc.response
                status = response.status_code if response is not None else None
                failure = DicomwebError(self._refused(response, what, attempt), status)
                if status not in RETRY_STATUS:
                    raise failure from exc
            except ValueError as exc:  # JSON or multipart that does not parse: not a DICOMweb answer
                raise DicomwebError(
                    f"{self.url} answered {what} with something that is not DICOMweb ({_short(exc)}); "
                    "check that --url is the DICOMweb root (e.g. http://host:8042/dicom-web)"
                ) from exc
            if attempt < tries:
                log.info("%s: %s; trying again in %.1f s", what, failure, wait)
                self.sleep(wait)
                wait = min(wait * 2, MAX_WAIT_S)
        raise failure

    def _unreachable(self, exc: Exception, what: str, attempt: int) -> str:
        if isinstance(exc, requests.Timeout):
            why = f"no answer within --timeout {self.settings.timeout:g} s"
        else:
            text = str(exc)
            why = next(
                (
                    label
                    for key, label in (
                        ("Connection refused", "connection refused"),
                        ("Name or service not known", "host name not resolved"),
                        ("NameResolutionError", "host name not resolved"),
                        ("Connection reset", "connection reset"),
                        ("RemoteDisconnected", "connection closed by the server"),
                    )
                    if key in text
                ),
                type(exc).__name__,
            )
        return (
            f"cannot reach {self.url} ({why}, {_tries(attempt)}) to {what}; check --url and that the "
            "server is running"
        )

    def _refused(self, response: requests.Response | None, what: str, attempt: int) -> str:
        if response is None:
            return f"{self.url} refused to {what} (no response)"
        status, reason = response.status_code, response.reason or ""
        head = f"{self.url} answered {status} {reason}".rstrip() + f" to {what}"
        if status == 401:
            fix = (
                f"the credentials were not accepted; check {TOKEN_ENV} or {USER_ENV}/{PASSWORD_ENV}"
                if self.authenticated
                else f"the server needs credentials: set {TOKEN_ENV} (bearer) or "
                f"{USER_ENV} and {PASSWORD_ENV} (basic)"
            )
            return f"{head}: {fix}"
        if status == 403:
            return f"{head}: the account is not allowed to do this; ask the server's administrator for access"
        if status == 404:
            return (
                f"{head} ({response.url}): check that --url is the DICOMweb root "
                "(e.g. http://host:8042/dicom-web) and that the UID exists there"
            )
        detail = server_reason(response)
        more = f": {detail}" if detail else ""
        if status in RETRY_STATUS:
            more += f" ({_tries(attempt)})"
        return head + more


def server_reason(response: requests.Response) -> str:
    """The server's own words for a failure, on one line: a JSON error's message (Orthanc writes
    ``Message``/``Details``), else the first line of the body; at most 200 characters."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and FAILED_SOP_SEQUENCE in body:  # a STOW-RS answer in DICOM JSON
        items = (body[FAILED_SOP_SEQUENCE] or {}).get("Value") or []
        codes = [((i.get(FAILURE_REASON) or {}).get("Value") or [None])[0] for i in items]
        text = "failure reason " + ", ".join(f"0x{int(c):04X}" for c in codes if c is not None)
    elif isinstance(body, dict):
        parts = [str(body[k]) for k in ("Message", "Details", "message", "error") if body.get(k)]
        text = " - ".join(parts) or json.dumps(body)
    elif response.content and "text" in response.headers.get("Content-Type", "text"):
        text = response.text.strip().splitlines()[0] if response.text.strip() else ""
    return text[:200]


def _tries(attempt: int) -> str:
    return "1 try" if attempt == 1 else f"{attempt} tries"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]

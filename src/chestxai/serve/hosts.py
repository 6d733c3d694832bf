"""Which ``Host`` names the service answers (400 otherwise): a defence against DNS rebinding.

Why: a web page on another site can make a browser send requests to ``127.0.0.1:8000`` under a
host name the attacker controls (DNS rebinding); checking the ``Host`` header stops that. The
check is Starlette's ``TrustedHostMiddleware`` (exact names, ``*.example.com`` wildcards, ``*``
for any); the allowed names default to loopback (``localhost``, ``127.0.0.1``, ``::1``) and are set
with ``chestxai serve --allowed-hosts`` when the service is reached under another name.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.trustedhost import TrustedHostMiddleware


def allow_hosts(app: Any, allowed: tuple[str, ...]) -> None:
    """Refuse requests whose ``Host`` is not one of ``allowed`` (the port is ignored)."""
    names = [f"[{h}]" if ":" in h and not h.startswith("[") else h for h in allowed]  # IPv6 as in Host
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=names, www_redirect=False)


def binding_advice(host: str, allowed: tuple[str, ...]) -> str | None:
    """What to set when binding to ``host`` while only ``allowed`` names are accepted; None when fine."""
    if "*" in allowed or host in allowed or host in ("127.0.0.1", "localhost", "::1"):
        return None
    name = "HOST" if host in ("0.0.0.0", "::") else host
    return (
        f"binding to {host}, but the service answers only Host names {', '.join(allowed)} "
        f"(others get 400); pass --allowed-hosts {name} [NAME ...] with the names clients use"
    )

"""Downloading pretrained weights when the machine is online, and failing at once when it is not.

The hub clients retry for minutes before giving up on a machine without a network, and most of
the machines this toolkit runs on (hospital servers, cluster nodes) are offline. So before any
download we decide *up front*, in at most ~1.5 s: ``CHESTXAI_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``
means offline without touching the network; otherwise one short TCP connect to the host that
would serve the file tells us whether it is reachable. Only then does the download run, through
timm's own hub path (``timm.models._hub``: the Hugging Face hub, the same cache ``timm`` itself
uses), or torch hub's ``download_url_to_file`` for a plain URL (torchxrayvision's GitHub releases).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

#: environment variables that declare the machine offline (HF's own, and ours for every host)
OFFLINE_ENV = ("CHESTXAI_OFFLINE", "HF_HUB_OFFLINE")
#: the whole network probe (DNS + TCP connect) takes at most this long
PROBE_TIMEOUT_S = 1.5
HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin")


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights are neither on disk nor downloadable now (offline, or the download failed).

    A FileNotFoundError, so the CLI reports it as a one-line user error; the message says what to do.
    """


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _reachable(host: str, port: int, timeout: float) -> bool:
    """One TCP connect to ``host:port``, bounded by ``timeout`` in total (DNS included: the lookup
    has no timeout of its own, so it runs in a daemon thread that we stop waiting for)."""
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, name=f"probe-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def offline_reason(url: str) -> str | None:
    """Why ``url`` cannot be downloaded from now (an env flag, or its host does not answer), or None."""
    for name in OFFLINE_ENV:
        if _truthy(os.environ.get(name)):
            return f"{name}={os.environ[name]} is set"
    parts = urlparse(url)
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    if not _reachable(host, port, PROBE_TIMEOUT_S):
        return f"{host}:{port} did not answer within {PROBE_TIMEOUT_S:g} s (no network, or a firewall)"
    return None


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def download_timm_weights(timm_name: str, where_to_put: str) -> Path:
    """Download ``timm_name``'s default pretrained weights through timm's hub path; returns the file.

    ``where_to_put`` (the cache paths that were searched) goes into the error when offline.
    """
    import timm
    from timm.models import _hub

    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise WeightsUnavailableError(f"timm has no default pretrained weights for {timm_name!r}")
    url = hub_endpoint() if cfg.hf_hub_id and _hub.has_hf_hub() else cfg.url
    advice = (
        f'On a connected machine run `python -c "import timm; timm.create_model({timm_name!r}, '
        f'pretrained=True)"` (it fills the Hugging Face cache, ~/.cache/huggingface/hub, which you can copy '
        f"over), or download the weights file and pass --weights PATH; the file is looked for at: {where_to_put}. "
        f"Or train from scratch with --no-pretrained."
    )
    reason = offline_reason(url)
    if reason:
        raise WeightsUnavailableError(
            f"pretrained weights for {timm_name!r} are not cached and cannot be downloaded: {reason}. {advice}"
        )
    try:
        if url == cfg.url:
            log.info("downloading %s weights from %s", timm_name, cfg.url)
            return Path(_hub.download_cached_file(cfg.url, check_hash=True))
        return _hf_download(cfg, timm_name)
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - hub/HTTP errors have many types; the message says which
        raise WeightsUnavailableError(
            f"downloading pretrained weights for {timm_name!r} failed ({type(exc).__name__}: {exc}). {advice}"
        ) from exc


def _hf_download(cfg, timm_name: str) -> Path:
    """The safetensors file when the repo has one (timm prefers it), else the pickled state dict."""
    from huggingface_hub.utils import EntryNotFoundError
    from timm.models import _hub

    repo_id, revision = _hub.hf_split(cfg.hf_hub_id)
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else list(HUB_FILENAMES)
    for i, filename in enumerate(names):
        log.info("downloading %s weights from the Hugging Face hub (%s/%s)", timm_name, repo_id, filename)
        try:
            return Path(_hub.hf_hub_download(repo_id=repo_id, filename=filename, revision=revision))
        except EntryNotFoundError:
            if i == len(names) - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def download_url(url: str, dest: Path, advice: str) -> Path:
    """``url`` -> ``dest`` (written to a temporary file, then renamed, by torch hub), offline-checked."""
    import torch.hub

    reason = offline_reason(url)
    if reason:
        raise WeightsUnavailableError(
            f"{dest.name} is not cached and cannot be downloaded: {reason}. {advice}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, dest)
    try:
        torch.hub.download_url_to_file(url, str(dest), progress=False)
    except Exception as exc:  # noqa: BLE001 - urllib/HTTP errors have many types; the message says which
        raise WeightsUnavailableError(
            f"downloading {url} failed ({type(exc).__name__}: {exc}). {advice}"
        ) from exc
    return dest

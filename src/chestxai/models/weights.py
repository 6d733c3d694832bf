"""Pretrained weights from a local file, an existing hub/torch cache, or a download, never silently random.

timm adapts the weights: ``in_chans=1`` sums the first convolution's RGB filters into one
grayscale filter, and ``num_classes=0`` drops the ImageNet classifier. This module resolves
*which file* (an explicit ``--weights`` path, a copy already in the Hugging Face hub cache or
the torch hub cache, or else a download through timm's hub path when the machine is online, see
:mod:`chestxai.models.pretrained`) and reads it exactly once: the same in-memory state dict is
checked for fit and handed to timm (``pretrained_cfg_overlay=dict(state_dict=...)``), so a large
file is neither read twice nor able to change in between. Offline, a miss fails at once (no hub
retry loop) with the places it looked and what to do. Chest X-ray weights (``xrv:...``) are
resolved by :mod:`chestxai.models.xrv`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chestxai.models.pretrained import HUB_FILENAMES, download_timm_weights

log = logging.getLogger(__name__)


def cached_weight_candidates(timm_name: str) -> list[Path]:
    """Where an already-downloaded copy of ``timm_name``'s default weights would be."""
    import timm
    import torch.hub

    cfg = timm.models.get_pretrained_cfg(timm_name)
    out: list[Path] = []
    if cfg is None:
        return out
    if cfg.hf_hub_id:
        from huggingface_hub.constants import HF_HUB_CACHE

        repo_dir = Path(HF_HUB_CACHE) / f"models--{cfg.hf_hub_id.replace('/', '--')}" / "snapshots"
        snapshots = sorted(repo_dir.glob("*")) if repo_dir.is_dir() else [repo_dir / "<revision>"]
        out += [snap / name for snap in snapshots for name in HUB_FILENAMES]
    if cfg.url:
        out.append(Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name)
    return out


def weights_file(
    model_name: str, timm_name: str, pretrained: bool, weights: str | Path | None
) -> Path | None:
    """The local file to initialise from: ``weights`` if given, else a cached copy when
    ``pretrained`` (downloaded first when not cached and the machine is online), else None (random
    init). A miss is a FileNotFoundError saying where it looked and what to do."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file {path} for model {model_name!r} does not exist; pass --weights with the path "
                f"to a timm/torchvision state dict (.pth, .bin or .safetensors) for {timm_name}"
            )
        return path
    if not pretrained:
        return None
    candidates = cached_weight_candidates(timm_name)
    for path in candidates:
        if path.is_file():
            log.info("using cached weights %s for %s", path, model_name)
            return path
    looked = "; ".join(str(p) for p in candidates) or "(timm has no default weights for this model)"
    return download_timm_weights(timm_name, looked)


def _why(exc: Exception) -> str:
    """One line of why torch refused a file: its several-paragraph ``weights_only`` message is cut to
    the offending global (the CLI prints every error as one line)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = next((line for line in lines if "Unsupported global" in line), None)
    if found:
        return "it pickles code: " + found.removeprefix("WeightsUnpickler error: ")[:200]
    return (lines[0] if lines else type(exc).__name__)[:200]


def read_state_dict(path: str | Path) -> dict:
    """The parameters stored in a weights file, read once (safetensors, or a torch state dict /
    training checkpoint with the weights under ``state_dict``/``model``/``state_dict_ema``).

    torch files are unpickled with ``weights_only=True``: a file that needs arbitrary code to load
    is refused, never executed. DataParallel's ``module.`` prefix is dropped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj = load_file(str(path))
    else:
        import torch

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - pickle/zip errors have many types; the message says which
            raise ValueError(
                f"weights file {path} is not a plain state dict torch can read safely ({_why(exc)}); save "
                f"only the parameters (torch.save(model.state_dict(), PATH)) or pass a .safetensors file"
            ) from exc
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"weights file {path} holds a {type(obj).__name__}, not a state dict of parameters")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def check_weights_fit(
    backbone, keys: set[str], source: str | Path, model_name: str, min_fraction: float = 0.9
) -> None:
    """Fail loudly when a weights file (its parameter names ``keys``) covers few of the backbone's.

    timm loads pretrained weights non-strictly (to allow dropping classifiers), so a file for
    another architecture would otherwise "load" and leave a silently random model.
    """
    wanted = set(backbone.state_dict())
    covered = len(wanted & keys) / max(len(wanted), 1)
    if covered < min_fraction:
        missing = sorted(wanted - keys)[:5]
        raise ValueError(
            f"weights file {source} does not fit {model_name}: only {covered:.0%} of its parameters are in the "
            f"file (missing e.g. {missing}). Is it the file for another architecture?"
        )

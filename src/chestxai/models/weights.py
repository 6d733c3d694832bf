"""Pretrained weights from a local file or an existing hub/torch cache, never silently random.

timm does the loading: ``pretrained_cfg_overlay=dict(file=...)`` reads a local file, ``in_chans=1``
sums the first convolution's RGB filters into one grayscale filter, and ``num_classes=0`` drops
the ImageNet classifier. This module only resolves *which file*: an explicit ``--weights`` path,
or a copy already in the Hugging Face hub cache or the torch hub cache. It never downloads (the
machines this runs on are often offline, and a hub retry loop costs minutes before failing), and a
miss is an error that lists the places it looked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin")


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


def pretrained_kwargs(
    model_name: str, timm_name: str, pretrained: bool, weights: str | Path | None
) -> dict[str, Any]:
    """timm.create_model keyword arguments for the requested weights (a local file or none)."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file {path} for model {model_name!r} does not exist; pass --weights with the path "
                f"to a timm/torchvision state dict (.pth, .bin or .safetensors) for {timm_name}"
            )
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    if not pretrained:
        return {"pretrained": False}
    candidates = cached_weight_candidates(timm_name)
    for path in candidates:
        if path.is_file():
            log.info("using cached weights %s for %s", path, model_name)
            return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    looked = "; ".join(str(p) for p in candidates) or "(timm has no default weights for this model)"
    raise FileNotFoundError(
        f"pretrained weights for {model_name!r} (timm {timm_name!r}) are not in a local cache. Looked for: "
        f"{looked}. Download them on a connected machine (e.g. `timm.create_model({timm_name!r}, "
        f"pretrained=True)`), then pass --weights PATH or copy them into one of those places; or train "
        f"from scratch with --no-pretrained."
    )


def file_keys(path: str | Path) -> set[str]:
    """Parameter names stored in a weights file (safetensors, or a torch state dict / checkpoint)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return set(f.keys())
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    return {k.removeprefix("module.") for k in obj}


def check_weights_fit(backbone, path: str | Path, model_name: str, min_fraction: float = 0.9) -> None:
    """Fail loudly when a weights file covers few of the backbone's parameters.

    timm loads pretrained files non-strictly (to allow dropping classifiers), so a file for another
    architecture would otherwise "load" and leave a silently random model.
    """
    wanted = set(backbone.state_dict())
    found = file_keys(path)
    covered = len(wanted & found) / max(len(wanted), 1)
    if covered < min_fraction:
        missing = sorted(wanted - found)[:5]
        raise ValueError(
            f"weights file {path} does not fit {model_name}: only {covered:.0%} of its parameters are in the "
            f"file (missing e.g. {missing}). Is it the file for another architecture?"
        )

"""A synthesis run's files for later stages: ``checkpoint.pt``, ``splits.csv`` and :func:`load_synth`.

``checkpoint.pt`` rebuilds both generators on its own (only tensors, dicts, lists, strings and
numbers, so ``torch.load(weights_only=True)`` reads it; no code from a file ever runs)::

    kind            "cyclegan"
    synth_format    1
    generator       ResnetGenerator kwargs {channels, n_blocks, ngf} (both directions share them)
    a2b, b2a        state dicts: a2b maps domain A images to domain B, b2a the way back
    domains         {"a": "not:Pneumonia", "b": "Pneumonia"}   (the --domain-a / --domain-b texts)
    size            image side in pixels (the prepared caches')
    cache_dir       the prepared cache of domain A (and of B unless cache_dir_b is set)
    cache_dir_b     "" or the second source's prepared cache (--source-b)
    epoch           epochs completed when written
    config          the resolved synthesis settings (dict)

``last.pt`` is the same dict plus ``train_state`` (discriminators, optimisers, scaler, image
pools, history; see :mod:`chestxai.synth.loop`). Pixels: a cache's uint8 ``v`` enters the
networks as ``v / 127.5 - 1`` (:func:`to_model_input`) and leaves through :func:`to_uint8`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from chestxai.atomic import write_text
from chestxai.models.checkpoint import save_atomic
from chestxai.rundir import SynthRunDir
from chestxai.synth.networks import ResnetGenerator

KIND = "cyclegan"
SYNTH_FORMAT = 1
DIRECTIONS = ("a2b", "b2a")
SPLIT_COLUMNS = ("image_id", "row", "split", "domain")


# ---- pixels -------------------------------------------------------------------------------------
def to_model_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images N x H x W (array or tensor; N x 1 x H x W also taken) -> float32 N x 1 x H x W
    in [-1, 1] (on the tensor's device)."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected uint8 images N x H x W (1 channel), got shape {tuple(x.shape)}")
    return x.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Network output in [-1, 1] (N x 1 x H x W or N x H x W) -> uint8 numpy N x H x W."""
    x = x.detach().float()
    if x.ndim == 4:
        x = x[:, 0]
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).cpu().numpy()


# ---- checkpoint.pt --------------------------------------------------------------------------------
def make_checkpoint(
    a2b: torch.nn.Module,
    b2a: torch.nn.Module,
    *,
    domains: dict[str, str],
    size: int,
    cache_dir: str | Path,
    cache_dir_b: str | Path | None,
    config: dict[str, Any],
    epoch: int,
) -> dict[str, Any]:
    """The ``checkpoint.pt`` dict (module docstring); ``last.pt`` adds ``train_state`` to it."""
    return {
        "kind": KIND,
        "synth_format": SYNTH_FORMAT,
        "generator": dict(a2b.config),
        "a2b": {k: v.detach().cpu() for k, v in a2b.state_dict().items()},
        "b2a": {k: v.detach().cpu() for k, v in b2a.state_dict().items()},
        "domains": {"a": str(domains["a"]), "b": str(domains["b"])},
        "size": int(size),
        "cache_dir": str(cache_dir),
        "cache_dir_b": str(cache_dir_b or ""),
        "epoch": int(epoch),
        "config": dict(config),
    }


def save_synth(path: str | Path, ckpt: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically (a kill leaves the old file or the new one)."""
    save_atomic(ckpt, path)


def read_synth(path: str | Path) -> dict[str, Any]:
    """A synthesis checkpoint dict (``checkpoint.pt`` or ``last.pt``), read with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"synthesis checkpoint {path} does not exist; train one with `chestxai synth train`"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"{path} is not a chestxai synthesis checkpoint; refused to unpickle it ({reason[:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(
            f"{path} is not a chestxai synthesis checkpoint ({str(exc).strip()[:200]})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND or ckpt.get("synth_format") != SYNTH_FORMAT:
        raise ValueError(
            f"{path} is not a chestxai synthesis checkpoint (kind {KIND!r}, format {SYNTH_FORMAT}); "
            f"a classifier run? `chestxai synth` needs a run of `chestxai synth train`"
        )
    return ckpt


def build_generator(ckpt: dict[str, Any], direction: str) -> ResnetGenerator:
    """One generator of a checkpoint dict, weights loaded, on the CPU in eval mode."""
    net = ResnetGenerator(**ckpt["generator"])
    net.load_state_dict(ckpt[direction])
    return net.eval()


# ---- splits.csv -------------------------------------------------------------------------------
def write_splits(run: SynthRunDir, frame: pd.DataFrame) -> Path:
    """``splits.csv``: image_id, row, split, domain ("a"/"b") of every image a domain selected."""
    missing = [c for c in SPLIT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"synthesis splits lack columns {missing}")
    write_text(run.splits, frame[list(SPLIT_COLUMNS)].to_csv(index=False))
    return run.splits


def read_splits(run: SynthRunDir) -> pd.DataFrame:
    if not run.splits.is_file():
        raise FileNotFoundError(f"{run.splits} is missing; was {run.root} written by `chestxai synth train`?")
    frame = pd.read_csv(
        run.splits, dtype={"image_id": str, "split": str, "domain": str}, keep_default_na=False
    )
    missing = [c for c in SPLIT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{run.splits} lacks columns {missing}; a synthesis run needs {', '.join(SPLIT_COLUMNS)}"
        )
    frame["row"] = pd.to_numeric(frame["row"], errors="raise").astype(np.int64)
    return frame


# ---- the loaded run -----------------------------------------------------------------------------
@dataclass
class SynthModel:
    """Everything a later stage needs from a synthesis run (see :func:`load_synth`)."""

    generators: dict[str, torch.nn.Module]  # "a2b", "b2a"; eval mode, on ``device``
    domains: dict[str, str]  # {"a": text, "b": text}
    size: int
    cache_dir: Path  # domain A's prepared cache (and B's unless cache_dir_b)
    cache_dir_b: Path | None  # the second source's cache when domain B came from another dataset
    splits: pd.DataFrame  # image_id, row, split, domain
    config: dict[str, Any]
    epoch: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def cache_for(self, domain: str) -> Path:
        """The prepared cache holding ``domain``'s (``"a"``/``"b"``) images."""
        domain = check_domain_key(domain)
        return self.cache_dir_b if (domain == "b" and self.cache_dir_b is not None) else self.cache_dir

    def rows(self, domain: str, split: str) -> np.ndarray:
        """Cache rows of ``domain`` in ``split`` (train/val/test), as training selected them."""
        domain = check_domain_key(domain)
        pick = (self.splits["domain"] == domain) & (self.splits["split"] == split)
        return self.splits.loc[pick, "row"].to_numpy(np.int64)

    def generator(self, direction: str) -> torch.nn.Module:
        return self.generators[check_direction(direction)]

    @torch.no_grad()
    def translate(self, images: np.ndarray, direction: str, batch_size: int = 16) -> np.ndarray:
        """uint8 N x H x W of the source domain -> uint8 N x H x W translated by ``direction``."""
        net = self.generator(direction)
        out = []
        for start in range(0, len(images), batch_size):
            x = to_model_input(np.asarray(images[start : start + batch_size])).to(self.device)
            out.append(to_uint8(net(x)))
        return np.concatenate(out) if out else np.zeros((0, self.size, self.size), np.uint8)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: a CycleGAN run translates a2b or b2a only")
    return direction


def check_domain_key(domain: str) -> str:
    if domain not in ("a", "b"):
        raise ValueError(f"domain {domain!r}: a synthesis run has domains 'a' and 'b'")
    return domain


def load_synth(run_root: str | Path, device: str | torch.device = "cpu") -> SynthModel:
    """Both generators of ``RUN/checkpoint.pt`` in eval mode on ``device``, with the run's domains,
    size, caches, ``splits.csv`` and config."""
    run = SynthRunDir(Path(run_root))
    ckpt = read_synth(run.require())
    device = torch.device(device)
    generators = {d: build_generator(ckpt, d).to(device) for d in DIRECTIONS}
    return SynthModel(
        generators=generators,
        domains=dict(ckpt["domains"]),
        size=int(ckpt["size"]),
        cache_dir=Path(ckpt["cache_dir"]),
        cache_dir_b=Path(ckpt["cache_dir_b"]) if ckpt.get("cache_dir_b") else None,
        splits=read_splits(run),
        config=dict(ckpt.get("config", {})),
        epoch=int(ckpt.get("epoch", 0)),
        device=device,
    )

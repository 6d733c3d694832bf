"""CycleGAN training, read top to bottom: data -> networks -> epochs -> crash-safe writes.

data    the classifier's prepare path and splits, then the two domains (synth/data.py)
nets    CycleGAN (synth/cyclegan.py): the paper's networks, losses, pools and optimisers
epochs  unpaired batches drawn in a (seed, epoch) order from the memmap, one CycleGAN step each;
        constant learning rate, then linear decay (SynthSettings.lr_factor)

No augmentation, and in particular **no horizontal flip** (the reference implementation flips by
default): a mirrored chest X-ray puts the heart on the wrong side, and a generator trained on
such images learns to produce anatomy that does not exist (situs inversus is ~1 in 10,000).

Each epoch writes, in this order (each atomically, each followed by a crash point)::

    last.pt        generators + train_state (discriminators, optimisers, scaler, pools, history)
                   -- from here the epoch is done; --resume continues after it
    checkpoint.pt  the generators alone (what generate/evaluate read)
    history.csv    the history in last.pt, readable
    samples/epoch-NNN.png

as :mod:`chestxai.train.resume` does for classifiers: ``last.pt`` is the single source of truth,
and resume rewrites whatever a kill after it left stale (checkpoint.pt, history.csv, the grid).
The run directory is locked for the whole run (chestxai.locks).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from chestxai.atomic import write_text
from chestxai.crashpoints import crash_point
from chestxai.devices import pick_device
from chestxai.locks import LOCK_NAME, exclusive
from chestxai.rundir import SynthRunDir
from chestxai.rundir.tables import read_history, write_history
from chestxai.synth.checkpoint import (
    KIND,
    make_checkpoint,
    read_synth,
    save_synth,
    to_model_input,
    write_splits,
)
from chestxai.synth.cyclegan import LOSS_NAMES, CycleGAN
from chestxai.synth.data import DomainData, setup_domains
from chestxai.synth.samples import write_sample_grid
from chestxai.synth.settings import SynthSettings

log = logging.getLogger(__name__)


def train_synth(
    settings: SynthSettings, resume: bool = False, progress: bool = True, force: bool = False
) -> Path:
    """Train a CycleGAN; returns the run directory. ``resume`` continues after the last complete
    epoch (or starts when nothing is resumable yet); ``force`` trains into a non-empty folder
    that is not a synthesis run (it never replaces another tool's checkpoint)."""
    device = pick_device(settings.device)
    run = SynthRunDir(settings.run_path)
    with exclusive(run.root, "run directory"):
        resumable = start_run_dir(run, resume, force)
        _fit(settings, run, device, resumable, progress)
    return run.root


def _fit(
    settings: SynthSettings, run: SynthRunDir, device: torch.device, resume: bool, progress: bool
) -> None:
    if settings.threads:
        torch.set_num_threads(settings.threads)

    # ---- data ---------------------------------------------------------------------------------
    data, settings = setup_domains(settings, progress)
    train_a, train_b = data.rows["a"]["train"], data.rows["b"]["train"]
    steps = max(1, max(len(train_a), len(train_b)) // settings.batch_size)
    if settings.max_steps:
        steps = min(steps, settings.max_steps)
    grid_a, grid_b = (_grid_images(data, d, settings.samples, settings.seed) for d in ("a", "b"))

    # ---- networks -------------------------------------------------------------------------------
    gan = CycleGAN.from_settings(settings, data.size, device)
    epoch_done, history = 0, []
    if resume:
        epoch_done, history = restore(run, gan, settings, data, grid_a, grid_b, device)
    config = {"kind": KIND, **settings.to_dict()}
    write_text(run.config, yaml.safe_dump({**config, "environment": _environment(settings)}, sort_keys=False))
    crash_point("synth:after-config")
    write_splits(run, data.splits_frame())
    crash_point("synth:after-splits")
    log.info(
        "CycleGAN %r <-> %r: %d + %d training images, %d px, %d steps/epoch",
        settings.domain_a, settings.domain_b, len(train_a), len(train_b), data.size, steps,
    )  # fmt: skip

    # ---- epochs -------------------------------------------------------------------------------
    for epoch in range(epoch_done, settings.epochs):
        lr = settings.lr * settings.lr_factor(epoch)
        gan.set_lr(lr)
        order_a, order_b = epoch_pairs(train_a, train_b, steps * settings.batch_size, settings.seed, epoch)
        bar = tqdm(
            total=steps, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not progress, leave=False
        )
        sums = {k: torch.zeros((), device=device) for k in LOSS_NAMES}
        started = time.perf_counter()
        for step in range(steps):
            pick = slice(step * settings.batch_size, (step + 1) * settings.batch_size)
            real_a = _batch(data.images("a"), order_a[pick], device)
            real_b = _batch(data.images("b"), order_b[pick], device)
            losses = gan.step(real_a, real_b)
            for k in LOSS_NAMES:
                sums[k] += losses[k].float()
            bar.update(1)
            if progress and (step % 10 == 9 or step == steps - 1):  # .item() waits for the device
                bar.set_postfix({k: f"{sums[k].item() / (step + 1):.3f}" for k in LOSS_NAMES})
            crash_point("synth:step")
        bar.close()
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {"epoch": epoch + 1, **{k: sums[k].item() / steps for k in LOSS_NAMES}}
        row.update(
            lr=lr,
            epoch_time_s=seconds,
            train_images_per_s=2 * steps * settings.batch_size / max(seconds, 1e-9),
        )
        history.append(row)
        save_epoch(run, gan, settings, config, history, grid_a, grid_b, device)
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}/{settings.epochs}  "
                + "  ".join(f"{k} {row[k]:.4f}" for k in LOSS_NAMES)
                + f"  lr {lr:.2e}  {row['train_images_per_s']:.1f} img/s"
            )


# ---- the run directory ----------------------------------------------------------------------------
def _ours(path: Path) -> bool:
    try:
        read_synth(path)
        return True
    except (ValueError, FileNotFoundError):
        return False


def start_run_dir(run: SynthRunDir, resume: bool, force: bool) -> bool:
    """Check and tidy ``run`` (under its lock); True when there is an epoch to resume from.

    A folder holding a synthesis run is continued with ``--resume`` and otherwise refused (runs
    are never overwritten; ``--force`` starts it over). Any other non-empty folder is refused
    unless ``--force``, and even then another tool's ``checkpoint.pt``/``last.pt`` is never replaced.
    """
    names = [run.config, run.checkpoint, run.last, run.history, run.splits]
    for path in names:
        for tmp in run.root.glob(f".{path.name}.*.tmp"):
            log.info("removing %s, left by an interrupted write", tmp)
            tmp.unlink(missing_ok=True)
    for path in (run.checkpoint, run.last):
        if path.exists() and not _ours(path):
            raise FileExistsError(
                f"{path} is not a synthesis checkpoint (a classifier run?); choose another --name / --run-dir"
            )
    trained = run.last.exists() or run.checkpoint.exists()
    if trained and not resume:
        if not force:
            raise FileExistsError(
                f"{run.root} already holds a synthesis run; pass --resume to continue it, or choose another "
                f"--name / --run-dir (--force starts it over)"
            )
        log.warning("--force: starting %s over; its checkpoints are replaced", run.root)
        for path in (run.last, run.checkpoint, run.history, *run.samples.glob("epoch-*.png")):
            path.unlink(missing_ok=True)
        return False
    own = trained or _config_is_ours(run.config)
    others = [p.name for p in run.root.iterdir() if p.name != LOCK_NAME] if run.root.is_dir() else []
    if others and not own and not force:
        raise FileExistsError(
            f"{run.root} is not empty and holds no synthesis run ({', '.join(sorted(others)[:5])}); choose a new "
            f"--name / --run-dir, or pass --force to train into it"
        )
    if resume and not run.last.exists():
        log.info("--resume: nothing to resume in %s yet; training from scratch", run.root)
    return resume and run.last.exists()


def _config_is_ours(path: Path) -> bool:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(raw, dict) and raw.get("kind") == KIND


def save_epoch(
    run: SynthRunDir,
    gan: CycleGAN,
    settings: SynthSettings,
    config: dict[str, Any],
    history: list[dict],
    grid_a: np.ndarray,
    grid_b: np.ndarray,
    device: torch.device,
) -> None:
    """One epoch's writes in the module docstring's order."""
    epoch = len(history)
    ckpt = _checkpoint(gan, settings, config, epoch)
    save_synth(run.last, {**ckpt, "train_state": {**gan.state_dict(), "epoch": epoch, "history": history}})
    crash_point("synth:after-last")
    save_synth(run.checkpoint, ckpt)
    crash_point("synth:after-checkpoint")
    write_history(run, history)
    crash_point("synth:after-history")
    write_sample_grid(run.sample_grid(epoch), gan.g, grid_a, grid_b, device)
    crash_point("synth:after-samples")


def restore(
    run: SynthRunDir,
    gan: CycleGAN,
    settings: SynthSettings,
    data: DomainData,
    grid_a: np.ndarray,
    grid_b: np.ndarray,
    device: torch.device,
) -> tuple[int, list[dict]]:
    """Load ``last.pt`` into ``gan``; rewrite what a kill after it left stale. Returns (epochs done, history)."""
    last = read_synth(run.last)
    old = SynthSettings.from_dict(last.get("config", {}), f"{run.last} config")
    changed = settings.changed_on_resume(old)
    if changed:
        pairs = ", ".join(f"{k}: {getattr(old, k)!r} -> {getattr(settings, k)!r}" for k in changed)
        raise ValueError(f"--resume of {run.root} cannot change {pairs}; train a new run for that")
    state = last["train_state"]
    gan.load_state_dict(last, state)
    epoch, history = int(state["epoch"]), list(state["history"])
    log.info("resuming %s after epoch %d", run.root, epoch)
    if not run.checkpoint.exists() or int(read_synth(run.checkpoint).get("epoch", -1)) != epoch:
        log.info("rewriting %s from last.pt (the run was killed before writing it)", run.checkpoint)
        save_synth(run.checkpoint, {k: v for k, v in last.items() if k != "train_state"})
    frame = read_history(run)
    if frame is None or len(frame) != len(history):
        write_history(run, history)
    if epoch and not run.sample_grid(epoch).exists():
        write_sample_grid(run.sample_grid(epoch), gan.g, grid_a, grid_b, device)
    if epoch >= settings.epochs:
        log.info("%s already finished (%d epochs); nothing to train", run.root, epoch)
    return epoch, history


def _checkpoint(gan: CycleGAN, settings: SynthSettings, config: dict[str, Any], epoch: int) -> dict[str, Any]:
    return make_checkpoint(
        gan.g["a2b"],
        gan.g["b2a"],
        domains={"a": settings.domain_a, "b": settings.domain_b},
        size=settings.size,
        cache_dir=settings.cache_dir,
        cache_dir_b=settings.cache_dir_b or None,
        config={k: v for k, v in config.items() if k != "kind"},
        epoch=epoch,
    )


def _environment(settings: SynthSettings) -> dict[str, Any]:
    from chestxai.environment import capture_environment

    return capture_environment(settings.device, seed=settings.seed)


# ---- batches ----------------------------------------------------------------------------------
def epoch_pairs(
    rows_a: np.ndarray, rows_b: np.ndarray, n: int, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of each domain for one epoch, drawn independently (unpaired): each domain's rows
    in a fresh permutation, repeated as often as ``n`` needs. Seeded by (seed, epoch), so a
    resumed epoch draws exactly what an uninterrupted one would have."""
    rng = np.random.default_rng([seed, epoch])

    def draw(rows: np.ndarray) -> np.ndarray:
        reps = -(-n // len(rows))
        return np.concatenate([rng.permutation(rows) for _ in range(reps)])[:n]

    return draw(np.asarray(rows_a)), draw(np.asarray(rows_b))


def _batch(images: np.ndarray, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 rows of the memmap -> the device (4x less to move than float), then [-1, 1] there."""
    x = torch.from_numpy(np.ascontiguousarray(images[rows]))
    return to_model_input(x.to(device, non_blocking=True))


def _grid_images(data: DomainData, domain: str, k: int, seed: int) -> np.ndarray:
    """``k`` fixed images of ``domain`` for the sample grids: from ``val``, topped up from ``train``
    when val has fewer (the same images every epoch)."""
    rng = np.random.default_rng(seed)
    val, train = data.rows[domain]["val"], data.rows[domain]["train"]
    rows = np.concatenate([rng.permutation(val), rng.permutation(train)])[:k]
    return np.asarray(data.images(domain)[rows])

"""The training loop: read it top to bottom in one sitting (nanoGPT's train.py is the model).

data   -> prepared cache, splits, normalisation (data_setup.py); the cache's row size is the size
          the run records (data_setup.record_cache)
model  -> the recipe's model and preprocessing (models/recipe.py); DDP, optimiser, AMP, loss
          weights set up once (optimisation.py)
epochs -> batches from the memmap in a (seed, epoch) order, keyed augmentation (batches.py), AMP,
          clipping (_train_epoch) -> validation (evaluation's metrics) -> last.pt, best
          checkpoint.pt, history.csv in a crash-safe order (epoch_end.py, resume.py)

The run directory is locked for the whole run (chestxai.locks): a second ``train`` into the same
folder fails at once instead of mixing its files with ours.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from chestxai.config import RunConfig, save_config
from chestxai.crashpoints import crash_point
from chestxai.data.dataset import to_unit
from chestxai.devices import pick_device
from chestxai.locks import exclusive
from chestxai.models.factory import check_architecture, locate_weights, published_head_error
from chestxai.models.preprocess import to_input
from chestxai.models.recipe import model_for_recipe
from chestxai.models.xrv import is_xrv
from chestxai.rundir import RunDir
from chestxai.rundir.tables import write_splits
from chestxai.train import distributed as D
from chestxai.train.batches import epoch_order, iterate_batches
from chestxai.train.data_setup import TrainingData, cache_row_size, record_cache, setup_data, splits_frame
from chestxai.train.epoch_end import Fit, finish_epoch
from chestxai.train.losses import task_loss
from chestxai.train.memory import reset_peak_memory
from chestxai.train.optimisation import setup_optimisation, step_input
from chestxai.train.resume import LoopState, restore, start_run_dir
from chestxai.train.tracking import Tracker

log = logging.getLogger(__name__)


#: steps between progress-bar updates of the loss (each update waits for the device)
PROGRESS_EVERY = 10

#: called on rank 0 after each epoch is saved, with that epoch's history row; returning True stops
#: training there (how ``chestxai tune`` prunes a trial). The run stays a complete, resumable run.
EpochCallback = Callable[[dict], bool]


def train(
    config: RunConfig,
    resume: bool = False,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
) -> Path:
    """Train according to ``config``; returns the run directory. ``resume`` continues from last.pt
    (or starts from scratch when the folder holds nothing resumable yet); ``on_epoch`` may stop
    the run after any epoch (see :data:`EpochCallback`)."""
    preflight(config)
    device = pick_device(config.train.device)
    dist = D.setup(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    run = RunDir(Path(config.run_path))
    # rank 0 holds the lock (the kernel drops it however the process dies); other ranks follow it
    lock = exclusive(run.root, "run directory") if dist.is_main else contextlib.nullcontext()
    with lock:
        resumable = start_run_dir(run, resume) if dist.is_main else (resume and run.last.exists())
        _fit(config, run, dist, device, resumable, progress, on_epoch)
    D.teardown(dist)
    return run.root


def _fit(
    config: RunConfig,
    run: RunDir,
    dist: D.DistInfo,
    device: torch.device,
    resume: bool,
    progress: bool,
    on_epoch: EpochCallback | None = None,
) -> None:
    """The run itself, under the run directory's lock: data, model, epochs."""
    cfg = config.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # ---- data: rank 0 prepares the cache first so that ranks do not race on it -----------------
    if not dist.is_main:
        D.barrier(dist)
    data = setup_data(config.data, cfg.seed, progress and dist.is_main)
    if dist.is_main:
        D.barrier(dist)
    # the config saved below (and in every checkpoint) records the cache and its row size as used
    record_cache(config.data, data.cache, note=dist.is_main)

    # ---- model ------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts them)
    aux_classes, aux_targets = _aux_targets(data, config.model.aux)
    built = model_for_recipe(
        config.model, data.label_names, data.task, data.cache.size, data.mean, data.std, len(aux_classes)
    )
    # the published classifier as it is decides at its published operating points (until evaluate)
    thresholds = built.operating_points if cfg.epochs == 0 else None
    opt = setup_optimisation(built.model.to(device), data, cfg, dist, device)
    cfg.precision = opt.precision.name  # recorded in config.yaml (and every checkpoint's config)
    if dist.is_main:  # on screen: a precision the device emulates slowly must never be a silent choice
        log.info("training in %s (%s)", opt.precision.name, opt.precision.why)
        knobs = _step_knobs(cfg)
        if knobs:
            log.info("training step: %s", knobs)
        if progress:
            tqdm.write(
                f"training in {opt.precision.name} ({opt.precision.why})" + (f"; {knobs}" if knobs else "")
            )

    state = LoopState()
    if resume:
        state = restore(run, opt.core, opt.optimizer, opt.scheduler, opt.scaler, repair=dist.is_main)
        log.info("resuming %s after epoch %d", run.root, state.epoch)
        if state.finished(cfg.epochs):
            log.info("%s already finished (%d epochs); nothing to train", run.root, state.epoch)
    tracker = Tracker(run.root, config.name, config.tracking_uri, enabled=dist.is_main and config.tracking)
    if dist.is_main:
        save_config(config, run.config)
        crash_point("train:after-config")
        write_splits(run, splits_frame(data))
        crash_point("train:after-splits")
        tracker.log_params(config.to_dict())

    if not reset_peak_memory(device):  # peak_memory_mb is this run's, not an earlier run's in the process
        log.debug("peak memory: only the process's lifetime peak is readable here")
    fit = Fit(config, run, dist, device, data, built.preprocess, thresholds, opt, tracker, progress)

    if cfg.epochs == 0 and not state.history:  # a published classifier as it is, or an untrained baseline
        log.info("train.epochs is 0: scoring the initial model on val, no training")
        finish_epoch(fit, state, 0, math.nan, 0.0, 0)
    # ---- epochs -----------------------------------------------------------------------------
    for epoch in range(state.epoch, cfg.epochs):
        if state.stopped_early:
            break
        train_loss, seconds, seen = _train_epoch(fit, epoch, aux_targets)
        row = finish_epoch(fit, state, epoch + 1, train_loss, seconds, seen)
        if D.broadcast_flag(state.stopped_early, dist, device):
            log.info("early stopping after %d epochs without a better %s", state.bad_epochs, state.monitor)
            break
        stop = bool(on_epoch(dict(row))) if (on_epoch is not None and dist.is_main) else False
        if D.broadcast_flag(stop, dist, device):
            log.info("stopped by the caller after epoch %d", state.epoch)
            break

    if dist.is_main:
        tracker.log_artifact(run.history)
        tracker.log_artifact(run.config)
        tracker.close()


def _train_epoch(fit: Fit, epoch: int, aux_targets: np.ndarray | None) -> tuple[float, float, int]:
    """One epoch of optimisation steps on this rank's share of the train split; returns the mean
    training loss over all ranks, this rank's seconds and the images seen by all ranks together."""
    cfg, data, opt, dist, device = fit.config.train, fit.data, fit.opt, fit.dist, fit.device
    opt.model.train()
    # global RNG (dropout) re-seeded per epoch: a resumed epoch draws what it drew uninterrupted
    torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1_009 + dist.rank + 1)
    order = epoch_order(data.splits["train"], epoch, cfg.seed, opt.sampling, dist.rank, dist.world_size)
    batches = iterate_batches(
        data.cache.images,
        data.labels,
        order,
        cfg.batch_size,
        drop_last=len(order[0]) >= cfg.batch_size,
        augment=opt.augment,
        seed=cfg.seed,
        epoch=epoch,
    )
    bar = tqdm(
        total=opt.steps,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not (fit.progress and dist.is_main),
        leave=False,
    )
    started, seen = time.perf_counter(), 0
    # the loss sum stays on the device and is read every PROGRESS_EVERY steps: a per-step .item()
    # made the host wait for each GPU step, so the next batch's gather could not overlap it
    loss_sum = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
    for step, batch in enumerate(batches):
        if step >= opt.steps:
            break
        # uint8 to the device (4x less to move), then keyed augmentation there
        x = to_unit(batch.images.to(device, non_blocking=True), batch.params)
        x = step_input(to_input(x, fit.preprocess), cfg)  # resize + normalise as evaluation will
        y = batch.targets.to(device)
        with torch.autocast(device.type, dtype=opt.precision.dtype(), enabled=opt.precision.autocast):
            if aux_targets is not None:  # through the (DDP) wrapper, so gradients are synchronised
                logits, aux_logits = opt.model(x, with_aux=True)
            else:
                logits, aux_logits = opt.model(x), None
        loss = task_loss(data.task, logits.float(), y, opt.loss_weight, cfg.label_smoothing)
        if aux_logits is not None:
            aux_target = torch.as_tensor(aux_targets[batch.rows], device=device)
            loss = loss + fit.config.model.aux_weight * torch.nn.functional.cross_entropy(
                aux_logits.float(), aux_target
            )
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        if cfg.grad_clip:
            opt.scaler.unscale_(opt.optimizer)
            torch.nn.utils.clip_grad_norm_(opt.model.parameters(), cfg.grad_clip)
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.scheduler.step()
        seen += len(batch.rows)
        loss_sum += loss.detach().double() * len(batch.rows)  # what loss.item() * n summed, exactly
        bar.update(1)
        if not bar.disable and (step % PROGRESS_EVERY == 0 or step + 1 == opt.steps):
            bar.set_postfix(
                loss=f"{loss_sum.item() / seen:.4f}",
                img_s=f"{seen * dist.world_size / (time.perf_counter() - started):.0f}",
            )
    bar.close()
    loss_total = float(loss_sum.item())  # waits for the last step, so the epoch's seconds include it
    seconds = time.perf_counter() - started
    total_seen = D.all_reduce_sum(seen, dist, device)
    return D.all_reduce_sum(loss_total, dist, device) / max(total_seen, 1), seconds, total_seen


# ---- helpers (kept below so the loop above reads straight through) ------------------------------
def preflight(config: RunConfig) -> None:
    """Errors a recipe can cause, raised before any data is prepared or a model is built (public:
    ``chestxai tune`` runs it once before its first trial)."""
    from chestxai.models.registry import MODELS

    MODELS.get(config.model.name)  # unknown name -> error listing the valid ones
    # head and input size: checked when the model is built, i.e. after the data was prepared (minutes
    # on NIH)
    rows = cache_row_size(config.data.cache_dir) or config.data.size  # the size the model would see
    if not is_xrv(config.model.weights):  # xrv weights set their own input size
        check_architecture(config.model.name, config.model.head, config.model.input_size or rows)
    if config.model.published_head and not is_xrv(config.model.weights):
        raise ValueError(published_head_error(config.model.weights))
    if config.model.published_head and config.model.head != "pooled":
        raise ValueError(
            f"model.published_head needs the pooled head (model.head: pooled), not {config.model.head!r}"
        )
    # a missing file, or pretrained weights neither cached nor downloadable (offline), fail here
    locate_weights(config.model.name, config.model.pretrained, config.model.weights or None)


def _step_knobs(cfg) -> str:
    """``train.channels_last`` / ``train.compile`` as said on screen ("" when both are off)."""
    said = ["channels_last"] if cfg.channels_last else []
    if cfg.compile != "off":
        said.append(f"torch.compile mode {cfg.compile} (the first steps compile)")
    return ", ".join(said)


def _aux_targets(data: TrainingData, column: str) -> tuple[list[str], np.ndarray | None]:
    """Classes of the auxiliary column and the class index of every cache row (computed once)."""
    if not column:
        return [], None
    frame = data.cache.frame
    if column not in frame.columns:
        raise ValueError(
            f"model.aux={column!r} is not a column of the cache index; columns: {list(frame.columns)}"
        )
    values = frame[column].astype(str).to_numpy()
    classes, index = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"model.aux={column!r} has a single value {list(classes)}; nothing to learn")
    return list(classes), index.astype(np.int64)

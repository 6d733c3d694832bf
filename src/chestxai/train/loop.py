"""The training loop: read it top to bottom in one sitting (nanoGPT's train.py is the model).

data   -> prepared cache, splits, normalisation (data_setup.py)
model  -> create_model from the recipe; DDP when launched by torchrun
epochs -> batches from the memmap in a (seed, epoch) order, keyed augmentation (batches.py), AMP,
          clipping -> validation (evaluation's metrics) -> last.pt, best checkpoint.pt, history.csv
          in a crash-safe order (resume.py)

The run directory is locked for the whole run (chestxai.locks): a second ``train`` into the same
folder fails at once instead of mixing its files with ours.
"""

from __future__ import annotations

import contextlib
import json
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
from chestxai.data.augment import AugmentConfig
from chestxai.data.dataset import to_unit
from chestxai.data.splits import class_weights, pos_weight, sample_weights, stratify_key
from chestxai.locks import exclusive
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint
from chestxai.models.factory import locate_weights, published_head_error
from chestxai.models.predict import predict_probs
from chestxai.models.preprocess import to_input
from chestxai.models.xrv import is_xrv, published_thresholds, read_xrv_state, xrv_preprocess
from chestxai.rundir import RunDir
from chestxai.rundir.tables import write_splits
from chestxai.train import distributed as D
from chestxai.train.batches import epoch_order, iterate_batches
from chestxai.train.data_setup import TrainingData, setup_data, splits_frame
from chestxai.train.losses import task_loss
from chestxai.train.memory import peak_memory_mb, reset_peak_memory
from chestxai.train.resume import LoopState, restore, save_epoch, start_run_dir, train_state
from chestxai.train.schedule import make_optimizer, make_scheduler
from chestxai.train.tracking import Tracker
from chestxai.train.validation import improves, pick_monitor, selection_score, validation_scores

log = logging.getLogger(__name__)


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
    device = D.pick_device(config.train.device)
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
    config.data.cache_dir = str(data.cache.path.resolve())
    preprocess = {"size": config.model.input_size or data.cache.size, "mean": data.mean, "std": data.std}
    if is_xrv(config.model.weights):  # chest X-ray weights expect their own pixel range and size
        preprocess = xrv_preprocess(config.model.weights, config.model.name, config.model.input_size)

    # ---- model ------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts them)
    aux_classes, aux_targets = _aux_targets(data, config.model.aux)
    # a published head needs the xrv file's classifier and operating points: read it once for both
    published = (
        read_xrv_state(config.model.weights, config.model.name) if config.model.published_head else None
    )
    model = create_model(
        config.model.name,
        num_labels=len(data.label_names),
        task=data.task,
        head=config.model.head,
        dropout=config.model.dropout,
        aux_outputs=len(aux_classes),
        input_size=preprocess["size"],
        pretrained=config.model.pretrained,
        weights=config.model.weights or None,
        freeze_backbone=config.model.freeze_backbone,
        published_head=config.model.published_head,
        label_names=data.label_names,
        xrv_state=published,
    ).to(device)
    # the published classifier as it is decides at its published operating points (until evaluate)
    thresholds = None
    if published is not None and cfg.epochs == 0:
        thresholds = published_thresholds(published, data.label_names, data.task)
    core = model
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    train_rows = data.splits["train"]
    per_rank = -(-len(train_rows) // dist.world_size)
    steps = max(1, per_rank // cfg.batch_size) if per_rank >= cfg.batch_size else 1
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    weight = _loss_weight(data, cfg.class_weights, device)
    sampling = (
        sample_weights(stratify_key(data.labels[train_rows], data.task))
        if cfg.sampler == "weighted"
        else None
    )
    amp_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
    augment = AugmentConfig() if cfg.augment else None

    state = LoopState()
    if resume:
        state = restore(run, core, optimizer, scheduler, scaler, repair=dist.is_main)
        log.info("resuming %s after epoch %d", run.root, state.epoch)
        if state.finished(cfg.epochs):
            log.info("%s already finished (%d epochs); nothing to train", run.root, state.epoch)
    tracker = Tracker(run.root, config.name, config.tracking_uri, enabled=dist.is_main)
    if dist.is_main:
        save_config(config, run.config)
        crash_point("train:after-config")
        write_splits(run, splits_frame(data))
        crash_point("train:after-splits")
        tracker.log_params(config.to_dict())

    if not reset_peak_memory(device):  # peak_memory_mb is this run's, not an earlier run's in the process
        log.debug("peak memory: only the process's lifetime peak is readable here")

    def finish_epoch(number: int, train_loss: float, seconds: float, total_seen: int) -> dict:
        """Score the model on val, pick the best epoch, write last/best checkpoints and history:
        the end of every epoch, and the whole run when ``train.epochs`` is 0 (``number`` 0)."""
        # validation: every rank scores the full val split with the same weights -> same decision
        val_probs = predict_probs(core, data.cache.images[data.splits["val"]], preprocess, device=device)
        scores = validation_scores(data.task, data.labels[data.splits["val"]], val_probs)
        if not state.monitor:
            state.monitor = pick_monitor(scores)
            if state.monitor == "val_loss":
                log.warning(
                    "validation AUC is undefined (no class has both positives and negatives among the "
                    "%d validation images); selecting the best epoch on validation loss instead",
                    len(data.splits["val"]),
                )
        score = selection_score(scores, state.monitor)
        improved = improves(score, state.best_score, have_best=state.best_epoch != 0)
        state.epoch = number
        if improved:
            state.best_score, state.best_epoch, state.bad_epochs = score, state.epoch, 0
        else:
            state.bad_epochs += 1
        state.stopped_early = bool(cfg.early_stopping and state.bad_epochs >= cfg.early_stopping)
        row = {
            "epoch": state.epoch,
            "train_loss": train_loss,
            "val_loss": scores["loss"],
            "val_auc": scores["auc"],
            "val_accuracy": scores["accuracy"],
            "lr": optimizer.param_groups[0]["lr"],
            "best": int(improved),
            "selected_on": state.monitor,
            "epoch_time_s": seconds,
            "train_images_per_s": total_seen / max(seconds, 1e-9),
            "peak_memory_mb": peak_memory_mb(device),
        }
        state.history.append(row)
        if dist.is_main:
            ckpt = make_checkpoint(
                core,
                data.label_names,
                preprocess,
                config.to_dict(),
                epoch=state.epoch,
                val_auc=scores["auc"],
                val_loss=scores["loss"],
                selected_on=state.monitor,
                task=data.task,
                thresholds=thresholds,
            )
            save_epoch(run, ckpt, train_state(optimizer, scheduler, scaler, state), improved)
            numbers = {k: v for k, v in row.items() if k != "epoch" and not isinstance(v, str)}
            tracker.log_metrics(numbers, step=state.epoch)
            log.info("epoch %d: %s", state.epoch, json.dumps({k: round(v, 4) for k, v in numbers.items()}))
            if progress:
                tqdm.write(
                    f"epoch {state.epoch}/{cfg.epochs}  loss {train_loss:.4f}  val_loss {scores['loss']:.4f}  "
                    f"val_auc {scores['auc']:.4f}  val_acc {scores['accuracy']:.4f}  "
                    f"{row['train_images_per_s']:.0f} img/s{'  *best' if improved else ''}"
                )
        return row

    if cfg.epochs == 0 and not state.history:  # a published classifier as it is, or an untrained baseline
        log.info("train.epochs is 0: scoring the initial model on val, no training")
        finish_epoch(0, math.nan, 0.0, 0)
    # ---- epochs -----------------------------------------------------------------------------
    for epoch in range(state.epoch, cfg.epochs):
        if state.stopped_early:
            break
        model.train()
        # global RNG (dropout) re-seeded per epoch: a resumed epoch draws what it drew uninterrupted
        torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1_009 + dist.rank + 1)
        order = epoch_order(train_rows, epoch, cfg.seed, sampling, dist.rank, dist.world_size)
        batches = iterate_batches(
            data.cache.images,
            data.labels,
            order,
            cfg.batch_size,
            drop_last=len(order[0]) >= cfg.batch_size,
            augment=augment,
            seed=cfg.seed,
            epoch=epoch,
        )
        bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (progress and dist.is_main),
            leave=False,
        )
        started, seen, loss_sum = time.perf_counter(), 0, 0.0
        for step, batch in enumerate(batches):
            if step >= steps:
                break
            # uint8 to the device (4x less to move), then keyed augmentation there
            x = to_unit(batch.images.to(device, non_blocking=True), batch.params)
            x = to_input(x, preprocess)  # resize + normalise exactly as evaluation will
            y = batch.targets.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                if aux_targets is not None:  # through the (DDP) wrapper, so gradients are synchronised
                    logits, aux_logits = model(x, with_aux=True)
                else:
                    logits, aux_logits = model(x), None
            loss = task_loss(data.task, logits.float(), y, weight, cfg.label_smoothing)
            if aux_logits is not None:
                aux_target = torch.as_tensor(aux_targets[batch.rows], device=device)
                loss = loss + config.model.aux_weight * torch.nn.functional.cross_entropy(
                    aux_logits.float(), aux_target
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            seen += len(batch.rows)
            loss_sum += loss.item() * len(batch.rows)
            bar.update(1)
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}",
                img_s=f"{seen * dist.world_size / (time.perf_counter() - started):.0f}",
            )
        bar.close()
        seconds = time.perf_counter() - started
        total_seen = D.all_reduce_sum(seen, dist, device)
        train_loss = D.all_reduce_sum(loss_sum, dist, device) / max(total_seen, 1)

        row = finish_epoch(epoch + 1, train_loss, seconds, total_seen)
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


# ---- helpers (kept below so the loop above reads straight through) ------------------------------
def preflight(config: RunConfig) -> None:
    """Errors a recipe can cause, raised before any data is prepared or a model is built (public:
    ``chestxai tune`` runs it once before its first trial)."""
    from chestxai.models.registry import MODELS

    MODELS.get(config.model.name)  # unknown name -> error listing the valid ones
    if config.model.published_head and not is_xrv(config.model.weights):
        raise ValueError(published_head_error(config.model.weights))
    if config.model.published_head and config.model.head != "pooled":
        raise ValueError(
            f"model.published_head needs the pooled head (model.head: pooled), not {config.model.head!r}"
        )
    # a missing file, or pretrained weights neither cached nor downloadable (offline), fail here
    locate_weights(config.model.name, config.model.pretrained, config.model.weights or None)


def _loss_weight(data: TrainingData, enabled: bool, device: torch.device) -> torch.Tensor | None:
    if not enabled:
        return None
    rows = data.splits["train"]
    if data.task == "multiclass":
        w = class_weights(stratify_key(data.labels[rows], "multiclass"), len(data.label_names))
    else:
        w = pos_weight(data.labels[rows])
    return torch.as_tensor(w, dtype=torch.float32, device=device)


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

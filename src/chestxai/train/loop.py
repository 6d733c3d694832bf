"""The training loop: read it top to bottom in one sitting (nanoGPT's train.py is the model).

data   -> prepared cache, splits, normalisation (data_setup.py)
model  -> create_model from the recipe; DDP when launched by torchrun
epochs -> shuffled batches from the memmap, augmentation on tensors, AMP, clipping
       -> validation AUC -> best checkpoint, last checkpoint (for --resume), history.csv
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from chestxai.atomic import write_text
from chestxai.config import RunConfig, save_config
from chestxai.data.augment import AugmentConfig, augment_batch
from chestxai.data.splits import class_weights, pos_weight, sample_weights, stratify_key
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, read_checkpoint, save_atomic
from chestxai.models.predict import predict_probs
from chestxai.models.preprocess import to_input
from chestxai.rundir import RunDir
from chestxai.train import distributed as D
from chestxai.train.batches import epoch_order, iterate_batches
from chestxai.train.data_setup import TrainingData, setup_data, splits_frame
from chestxai.train.losses import task_loss
from chestxai.train.schedule import make_optimizer, make_scheduler
from chestxai.train.tracking import Tracker
from chestxai.train.validation import validation_scores

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """What --resume restores besides weights/optimizer: where we are and how well we did."""

    epoch: int = 0  # epochs completed
    best_auc: float = -math.inf
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


def train(config: RunConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train according to ``config``; returns the run directory. ``resume`` continues from last.pt."""
    cfg = config.train
    _preflight(config)
    device = D.pick_device(cfg.device)
    dist = D.setup(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = RunDir(config.run_path)
    _check_run_dir(run, resume)

    # ---- data: rank 0 prepares the cache first so that ranks do not race on it -----------------
    if not dist.is_main:
        D.barrier(dist)
    data = setup_data(config.data, cfg.seed, progress and dist.is_main)
    if dist.is_main:
        D.barrier(dist)
    config.data.cache_dir = str(data.cache.path.resolve())
    preprocess = {"size": config.model.input_size or data.cache.size, "mean": data.mean, "std": data.std}

    # ---- model ------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts them)
    aux_classes, aux_targets = _aux_targets(data, config.model.aux)
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
    ).to(device)
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
    if resume and run.last.exists():
        state = _restore(run, core, optimizer, scheduler, scaler)
        log.info("resuming %s after epoch %d", run.root, state.epoch)
    tracker = Tracker(run.root, config.name, config.tracking_uri, enabled=dist.is_main)
    if dist.is_main:
        run.root.mkdir(parents=True, exist_ok=True)
        save_config(config, run.config)
        splits_frame(data).to_csv(run.splits, index=False)
        tracker.log_params(config.to_dict())

    # ---- epochs -----------------------------------------------------------------------------
    for epoch in range(state.epoch, cfg.epochs):
        model.train()
        order = epoch_order(train_rows, epoch, cfg.seed, sampling, dist.rank, dist.world_size)
        batches = iterate_batches(
            data.cache.images, data.labels, order, cfg.batch_size, drop_last=len(order) >= cfg.batch_size
        )
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + dist.rank)
        bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (progress and dist.is_main),
            leave=False,
        )
        started, seen, loss_sum = time.perf_counter(), 0, 0.0
        for step, (images, targets, rows) in enumerate(batches):
            if step >= steps:
                break
            x = images.to(device, non_blocking=True).float().div_(255.0).unsqueeze(1)
            if augment is not None:
                x = augment_batch(x, augment, gen)
            x = to_input(x, preprocess)  # resize + normalise exactly as evaluation will
            y = targets.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                if aux_targets is not None:  # through the (DDP) wrapper, so gradients are synchronised
                    logits, aux_logits = model(x, with_aux=True)
                else:
                    logits, aux_logits = model(x), None
            loss = task_loss(data.task, logits.float(), y, weight, cfg.label_smoothing)
            if aux_logits is not None:
                aux_target = torch.as_tensor(aux_targets[rows], device=device)
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
            seen += len(rows)
            loss_sum += loss.item() * len(rows)
            bar.update(1)
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}",
                img_s=f"{seen * dist.world_size / (time.perf_counter() - started):.0f}",
            )
        bar.close()
        seconds = time.perf_counter() - started
        total_seen = D.all_reduce_sum(seen, dist, device)
        train_loss = D.all_reduce_sum(loss_sum, dist, device) / max(total_seen, 1)

        # validation: every rank scores the full val split with the same weights -> same decision
        val_probs = predict_probs(core, data.cache.images[data.splits["val"]], preprocess, device=device)
        scores = validation_scores(data.task, data.labels[data.splits["val"]], val_probs)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": scores["loss"],
            "val_auc": scores["auc"],
            "val_accuracy": scores["accuracy"],
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_time_s": seconds,
            "train_images_per_s": total_seen / max(seconds, 1e-9),
        }
        state.history.append(row)
        state.epoch = epoch + 1
        improved = scores["auc"] > state.best_auc or (
            math.isnan(state.best_auc) and not math.isnan(scores["auc"])
        )
        if improved:
            state.best_auc, state.bad_epochs = scores["auc"], 0
        else:
            state.bad_epochs += 1
        if dist.is_main:
            ckpt = make_checkpoint(
                core,
                data.label_names,
                preprocess,
                config.to_dict(),
                epoch=state.epoch,
                val_auc=scores["auc"],
                task=data.task,
            )
            if improved:
                save_atomic(ckpt, run.checkpoint)
            save_atomic({**ckpt, "train_state": _train_state(optimizer, scheduler, scaler, state)}, run.last)
            _write_history(run.history, state.history)
            tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=state.epoch)
            log.info("epoch %d: %s", state.epoch, json.dumps({k: round(v, 4) for k, v in row.items()}))
            if progress:
                tqdm.write(
                    f"epoch {state.epoch}/{cfg.epochs}  loss {train_loss:.4f}  val_loss {scores['loss']:.4f}  "
                    f"val_auc {scores['auc']:.4f}  val_acc {scores['accuracy']:.4f}  "
                    f"{row['train_images_per_s']:.0f} img/s{'  *best' if improved else ''}"
                )
        stop = cfg.early_stopping and state.bad_epochs >= cfg.early_stopping
        if D.broadcast_flag(bool(stop), dist, device):
            log.info("early stopping after %d epochs without a better validation AUC", state.bad_epochs)
            break

    if dist.is_main:
        tracker.log_artifact(run.history)
        tracker.log_artifact(run.config)
        tracker.close()
    D.teardown(dist)
    return run.root


# ---- helpers (kept below so the loop above reads straight through) ------------------------------
def _preflight(config: RunConfig) -> None:
    """Errors a recipe can cause, raised before any data is prepared or a model is built."""
    from chestxai.models.registry import MODELS

    MODELS.get(config.model.name)  # unknown name -> error listing the valid ones
    if config.model.weights and not Path(config.model.weights).expanduser().is_file():
        raise FileNotFoundError(
            f"model.weights={config.model.weights!r} does not exist; pass --weights with a local weights file"
        )


def _check_run_dir(run: RunDir, resume: bool) -> None:
    if resume:
        if not run.last.exists():
            raise FileNotFoundError(f"--resume: {run.last} does not exist; nothing to resume in {run.root}")
        return
    if run.checkpoint.exists() or run.last.exists():
        raise FileExistsError(
            f"{run.root} already holds a trained run; pass --resume to continue it, or choose another "
            f"--name / --run-dir (runs are never overwritten)"
        )


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


def _train_state(optimizer, scheduler, scaler, state: LoopState) -> dict:
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": state.epoch,
        "best_auc": state.best_auc,
        "bad_epochs": state.bad_epochs,
    }


def _restore(run: RunDir, model, optimizer, scheduler, scaler) -> LoopState:
    ckpt = read_checkpoint(run.last)
    model.load_state_dict(ckpt["state_dict"])
    ts = ckpt["train_state"]
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    scaler.load_state_dict(ts["scaler"])
    history = pd.read_csv(run.history).to_dict("records") if run.history.exists() else []
    history = [h for h in history if h["epoch"] <= ts["epoch"]]
    return LoopState(ts["epoch"], ts["best_auc"], ts["bad_epochs"], history)


def _write_history(path: Path, history: list[dict]) -> None:
    write_text(path, pd.DataFrame(history).to_csv(index=False))

"""Everything one optimisation step uses besides the batch, set up once per run.

DDP wrapping, the steps per epoch, optimiser and schedule, mixed precision, loss weights and the
weighted sampler are each a few lines, but together they made the loop unreadable; here they are
one call whose result the loop and the end of each epoch (:mod:`chestxai.train.epoch_end`) share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from chestxai.config import TrainConfig
from chestxai.data.augment import AugmentConfig
from chestxai.data.splits import class_weights, pos_weight, sample_weights, stratify_key
from chestxai.devices import Precision, choose_precision
from chestxai.train import distributed as D
from chestxai.train.data_setup import TrainingData
from chestxai.train.schedule import make_optimizer, make_scheduler


@dataclass
class Optimisation:
    model: torch.nn.Module  # what the step calls: DDP-wrapped when distributed (gradients sync)
    core: torch.nn.Module  # the model itself: validation and checkpoints use it unwrapped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler  # only active for fp16 on CUDA; a no-op otherwise
    precision: Precision  # what the step autocasts to (float32: no autocast); devices.choose_precision
    loss_weight: torch.Tensor | None  # pos_weight or class weights (train.class_weights)
    sampling: np.ndarray | None  # per-row draw weights (train.sampler: weighted)
    steps: int  # optimiser steps per epoch on each rank
    augment: AugmentConfig | None


def setup_optimisation(
    core: torch.nn.Module, data: TrainingData, cfg: TrainConfig, dist: D.DistInfo, device: torch.device
) -> Optimisation:
    """``core`` (already on ``device``) ready to train under ``cfg`` on ``data``'s train split."""
    model = step_model(core, cfg, dist, device)
    train_rows = data.splits["train"]
    # every rank takes an equal share; a share smaller than one batch still makes one step
    per_rank = -(-len(train_rows) // dist.world_size)
    steps = max(1, per_rank // cfg.batch_size) if per_rank >= cfg.batch_size else 1
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    sampling = (
        sample_weights(stratify_key(data.labels[train_rows], data.task))
        if cfg.sampler == "weighted"
        else None
    )
    # bfloat16 only where the device has it natively (no scaler needed); float16 gradients need scaling
    precision = choose_precision(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.scaler and device.type == "cuda")
    return Optimisation(
        model=model,
        core=core,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        precision=precision,
        loss_weight=_loss_weight(data, cfg.class_weights, device),
        sampling=sampling,
        steps=steps,
        augment=AugmentConfig() if cfg.augment else None,
    )


def step_model(
    core: torch.nn.Module, cfg: TrainConfig, dist: D.DistInfo, device: torch.device
) -> torch.nn.Module:
    """What a training step calls: ``core`` in ``train.channels_last`` memory format (in place, so
    validation and checkpoints see the same weights), DDP-wrapped when distributed, then compiled
    when ``train.compile`` names a mode (the DDP module compiled, as torch's DDP docs do, so its
    bucketed all-reduces still overlap the backward). ``core`` itself stays eager."""
    if cfg.channels_last:
        core.to(memory_format=torch.channels_last)
    model = core
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile != "off":
        model = torch.compile(model, mode=cfg.compile)
    return model


def step_input(x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """A batch in the memory format the step model expects (``train.channels_last``)."""
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def _loss_weight(data: TrainingData, enabled: bool, device: torch.device) -> torch.Tensor | None:
    if not enabled:
        return None
    rows = data.splits["train"]
    if data.task == "multiclass":
        w = class_weights(stratify_key(data.labels[rows], "multiclass"), len(data.label_names))
    else:
        w = pos_weight(data.labels[rows])
    return torch.as_tensor(w, dtype=torch.float32, device=device)

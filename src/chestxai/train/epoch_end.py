"""The end of an epoch: score on val, pick the best epoch, write last/best checkpoints and history.

A top-level function over the loop's state (:class:`~chestxai.train.resume.LoopState`) and what
the loop set up (:class:`Fit`), rather than a closure inside the loop, so that the loop reads in
one sitting and this step can be read (and called for ``train.epochs: 0``) on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from chestxai.config import RunConfig
from chestxai.models.checkpoint import make_checkpoint
from chestxai.models.predict import predict_probs
from chestxai.rundir import RunDir
from chestxai.train import distributed as D
from chestxai.train.data_setup import TrainingData
from chestxai.train.memory import peak_memory_mb
from chestxai.train.optimisation import Optimisation
from chestxai.train.resume import LoopState, save_epoch, train_state
from chestxai.train.tracking import Tracker
from chestxai.train.validation import improves, pick_monitor, selection_score, validation_scores

log = logging.getLogger(__name__)


@dataclass
class Fit:
    """What the loop set up once and every epoch (and its end) uses."""

    config: RunConfig
    run: RunDir
    dist: D.DistInfo
    device: torch.device
    data: TrainingData
    preprocess: dict  # the model input: to_input's size, mean, std
    thresholds: dict[str, float] | None  # checkpoint.pt's default thresholds (None: 0.5 each)
    opt: Optimisation
    tracker: Tracker
    progress: bool


def finish_epoch(
    fit: Fit, state: LoopState, number: int, train_loss: float, seconds: float, seen: int
) -> dict:
    """Score the model on val, pick the best epoch, write last/best checkpoints and history: the
    end of every epoch, and the whole run when ``train.epochs`` is 0 (``number`` 0). Updates
    ``state`` and returns the epoch's history row. ``seen``: training images over all ranks."""
    cfg, data, device = fit.config.train, fit.data, fit.device
    # validation: every rank scores the full val split with the same weights -> same decision
    val_rows = data.splits["val"]
    val_probs = predict_probs(fit.opt.core, data.cache.images[val_rows], fit.preprocess, device=device)
    scores = validation_scores(data.task, data.labels[val_rows], val_probs)
    if not state.monitor:
        state.monitor = pick_monitor(scores)
        if state.monitor == "val_loss":
            log.warning(
                "validation AUC is undefined (no class has both positives and negatives among the "
                "%d validation images); selecting the best epoch on validation loss instead",
                len(val_rows),
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
        "lr": fit.opt.optimizer.param_groups[0]["lr"],
        "best": int(improved),
        "selected_on": state.monitor,
        "epoch_time_s": seconds,
        "train_images_per_s": seen / max(seconds, 1e-9),
        "peak_memory_mb": peak_memory_mb(device),
    }
    state.history.append(row)
    if fit.dist.is_main:
        _save(fit, state, scores, row, improved)
    return row


def _save(fit: Fit, state: LoopState, scores: dict, row: dict, improved: bool) -> None:
    """Rank 0's writes for the epoch (checkpoints, history, tracking) and its one-line summary."""
    opt = fit.opt
    ckpt = make_checkpoint(
        opt.core,
        fit.data.label_names,
        fit.preprocess,
        fit.config.to_dict(),
        epoch=state.epoch,
        val_auc=scores["auc"],
        val_loss=scores["loss"],
        selected_on=state.monitor,
        task=fit.data.task,
        thresholds=fit.thresholds,
    )
    save_epoch(fit.run, ckpt, train_state(opt.optimizer, opt.scheduler, opt.scaler, state), improved)
    numbers = {k: v for k, v in row.items() if k != "epoch" and not isinstance(v, str)}
    fit.tracker.log_metrics(numbers, step=state.epoch)
    log.info("epoch %d: %s", state.epoch, json.dumps({k: round(v, 4) for k, v in numbers.items()}))
    if fit.progress:
        tqdm.write(
            f"epoch {state.epoch}/{fit.config.train.epochs}  loss {row['train_loss']:.4f}  "
            f"val_loss {scores['loss']:.4f}  val_auc {scores['auc']:.4f}  val_acc {scores['accuracy']:.4f}  "
            f"{row['train_images_per_s']:.0f} img/s{'  *best' if improved else ''}"
        )

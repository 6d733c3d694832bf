"""What survives a kill: the order of an epoch's writes, resuming from them, and starting clean.

Each epoch writes, in this order (each file atomically, each followed by a named crash point so a
test can kill the process right there, see :mod:`chestxai.crashpoints`):

1. ``last.pt``: weights, optimizer/scheduler state *and the whole history and selection state*.
   From here on the epoch is done: resume continues after it.
2. ``checkpoint.pt`` when the epoch is the best so far.
3. ``history.csv``, a readable copy of the history in ``last.pt``.

``last.pt`` is the single source of truth, so a kill after it loses nothing: resume rewrites
``history.csv`` from it, and rewrites ``checkpoint.pt`` from it when the killed epoch was the
best one (``last.pt`` then holds exactly the best weights). A kill before the first ``last.pt``
leaves nothing to resume: ``--resume`` starts from scratch. A run that finished (all epochs, or
stopped early: recorded in ``last.pt``) is not trained again by ``--resume``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from chestxai.crashpoints import crash_point
from chestxai.models.checkpoint import read_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.rundir.tables import read_history, write_history

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """What --resume restores besides weights/optimizer: where we are and how well we did."""

    epoch: int = 0  # epochs completed
    best_score: float = -math.inf  # the monitored score of the best epoch (higher is better)
    best_epoch: int = 0  # 0 = none yet; -1 = one exists, epoch unknown (a last.pt of an older version)
    monitor: str = ""  # "val_auc" or "val_loss" (chosen at the first validation)
    bad_epochs: int = 0  # epochs since the last improvement (early stopping)
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)

    def finished(self, epochs: int) -> bool:
        return self.stopped_early or self.epoch >= epochs


def start_run_dir(run: RunDir, resume: bool) -> bool:
    """Check and tidy ``run`` before training (under its lock); True when there is a run to resume.

    A plain start refuses a folder that holds a checkpoint (runs are never overwritten).
    ``--resume`` without ``last.pt`` starts from scratch: nothing resumable was written (a kill
    before the end of epoch 1). Temporary files of killed atomic writes are removed either way.
    """
    for path in (run.config, run.checkpoint, run.last, run.history, run.splits):
        for tmp in run.root.glob(f".{path.name}.*.tmp"):
            log.info("removing %s, left by an interrupted write", tmp)
            tmp.unlink(missing_ok=True)
    if not resume:
        if run.checkpoint.exists() or run.last.exists():
            raise FileExistsError(
                f"{run.root} already holds a trained run; pass --resume to continue it, or choose another "
                f"--name / --run-dir (runs are never overwritten)"
            )
        return False
    if run.last.exists():
        return True
    if run.checkpoint.exists():
        log.warning(
            "--resume: %s has checkpoint.pt but no last.pt (killed during epoch 1 by an older version); "
            "nothing to resume from, training from scratch",
            run.root,
        )
    else:
        log.info("--resume: nothing to resume in %s yet; training from scratch", run.root)
    return False


def train_state(optimizer, scheduler, scaler, state: LoopState) -> dict[str, Any]:
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        **asdict(state),
    }


def save_epoch(run: RunDir, ckpt: dict[str, Any], state: dict[str, Any], improved: bool) -> None:
    """The epoch's writes, in the order the module docstring gives (main rank only)."""
    save_atomic({**ckpt, "train_state": state}, run.last)
    crash_point("train:after-last")
    if improved:
        save_atomic(ckpt, run.checkpoint)
        crash_point("train:after-best")
    write_history(run, state["history"])
    crash_point("train:after-history")


def restore(run: RunDir, model, optimizer, scheduler, scaler, repair: bool = True) -> LoopState:
    """Load ``last.pt`` into the model and optimizers; with ``repair`` (main rank) rewrite what a
    kill after ``last.pt`` left stale: ``checkpoint.pt`` of a best last epoch, ``history.csv``."""
    last = read_checkpoint(run.last)
    model.load_state_dict(last["state_dict"])
    ts = last["train_state"]
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    scaler.load_state_dict(ts["scaler"])
    names = set(LoopState.__dataclass_fields__)
    state = LoopState(**{k: v for k, v in ts.items() if k in names})
    if "history" not in ts:  # last.pt of an older version: history only in history.csv, AUC only
        frame = read_history(run)
        old = frame.to_dict("records") if frame is not None else []
        state.history = [h for h in old if h["epoch"] <= state.epoch]
        state.best_score, state.best_epoch, state.monitor = ts.get("best_auc", -math.inf), -1, "val_auc"
    if repair:
        if state.best_epoch == state.epoch and _checkpoint_epoch(run) != state.epoch:
            log.info("rewriting %s from last.pt (the run was killed before writing it)", run.checkpoint)
            save_atomic({k: v for k, v in last.items() if k != "train_state"}, run.checkpoint)
        elif not run.checkpoint.exists():
            log.warning("%s is missing; the next better epoch writes it again", run.checkpoint)
        write_history(run, state.history)
    return state


def _checkpoint_epoch(run: RunDir) -> int | None:
    if not run.checkpoint.exists():
        return None
    try:
        return int(read_checkpoint(run.checkpoint).get("epoch", -1))
    except (ValueError, RuntimeError, OSError):  # unreadable: rewrite it
        return None

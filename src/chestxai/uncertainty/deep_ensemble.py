"""Ensemble members as an uncertainty method: their disagreement is the (epistemic) uncertainty.

Members come from an ensemble run (``RUN/ensemble.json``, with its fitted weights) or from several
run directories given together (uniform weights). They must agree on what they predict (labels,
task), on the input size (one geometry, so their heatmaps can be compared pixel for pixel) and on the
cache they were trained on; any disagreement is an error naming the member and the field, raised
after reading the checkpoints and before any inference. Members seeded differently normalise with
slightly different mean/std (fitted on their training images); that is allowed: each member gets
its own normalisation of the same [0, 1] pixels (``preprocess=[...]`` of the API).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from chestxai.models.checkpoint import load_model, read_checkpoint
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble

#: what every member must share, and where it lives in a checkpoint
_AGREE = {
    "label names": lambda c: list(c["label_names"]),
    "task": lambda c: (c.get("model") or {}).get("task"),
    "preprocessing (input size)": lambda c: int((c.get("preprocess") or {}).get("size", 0)),
    "training cache": lambda c: ((c.get("config") or {}).get("data") or {}).get("cache_dir"),
}


@dataclass
class Members:
    runs: list[RunDir]
    weights: list[float]
    checkpoints: list[dict]
    source: str  # "ensemble.json of RUN" or "runs given"


def member_runs(
    run: RunDir, others: Sequence[str | Path] = ()
) -> tuple[list[RunDir], list[float] | None, str]:
    """Member run directories and weights (None = uniform): ``run``'s ensemble.json, or ``run`` plus ``others``."""
    if others:
        runs = [run, *(RunDir(Path(o)) for o in others)]
        return runs, None, "runs given on the command line"
    if run.is_ensemble:
        manifest = read_ensemble(run)
        return [RunDir(m) for m in manifest.members], list(manifest.weights), f"{run.ensemble}"
    raise ValueError(
        f"--method ensemble needs several models: {run.root} is not an ensemble run (no ensemble.json); "
        f"give more runs (`chestxai uncertainty {run.root} RUN2 RUN3 --method ensemble`) or build one with "
        f"`chestxai ensemble`"
    )


def check_agreement(checkpoints: Sequence[dict], names: Sequence[str]) -> None:
    """ValueError naming the first member whose labels, task, preprocessing or cache differ from the first's."""
    first = checkpoints[0]
    for ckpt, name in zip(checkpoints[1:], names[1:], strict=True):
        for what, get in _AGREE.items():
            if get(ckpt) != get(first):
                raise ValueError(
                    f"ensemble members disagree on {what}: {names[0]} has {get(first)!r} but {name} has "
                    f"{get(ckpt)!r}; ensemble only runs trained for the same task on the same cache and "
                    f"input size"
                )


def read_members(run: RunDir, others: Sequence[str | Path] = ()) -> Members:
    """Find, read and check the members (no model is built yet)."""
    runs, weights, source = member_runs(run, others)
    if len(runs) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, {source} lists {len(runs)}")
    for r in runs:
        r.require_dir()
    checkpoints = [read_checkpoint(r.require_checkpoint()) for r in runs]
    check_agreement(checkpoints, [str(r.root) for r in runs])
    w = weights if weights is not None else [1.0 / len(runs)] * len(runs)
    total = sum(w)
    return Members(runs, [x / total for x in w], checkpoints, source)


def load_member_models(members: Members, device: str | torch.device = "cpu") -> list:
    return [load_model(r.checkpoint, device=device)[0] for r in members.runs]

"""``RUN/thresholds.json``: the one place operating thresholds live after training.

A checkpoint is immutable once training wrote it (it carries training-time 0.5 defaults);
``evaluate`` chooses thresholds on validation and writes them here, with the policy, where they
were chosen, and which checkpoint epoch they belong to. Everything that turns probabilities into
decisions (evaluate on other data, the report, serving) calls :func:`operating_thresholds`, which
falls back to the checkpoint's defaults when no file exists or the file belongs to another epoch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chestxai.rundir.jsonfile import read_json, write_json
from chestxai.rundir.layout import RunDir

log = logging.getLogger(__name__)
FORMAT = 1
DEFAULT = 0.5


@dataclass(frozen=True)
class OperatingThresholds:
    values: dict[str, float]
    source: str  # "thresholds.json", "checkpoint" or "default 0.5"
    policy: str | None = None
    temperature: float | None = None  # apply to probabilities before these thresholds


def write_thresholds(
    run: RunDir,
    values: dict[str, float],
    *,
    policy: str,
    chosen_on: str,
    epoch: int | None,
    checkpoint: str | None,
    evaluated_split: str,
    temperature: float | None = None,
) -> dict[str, Any]:
    """Write ``RUN/thresholds.json`` (atomically) and return what was written.

    ``temperature``: the thresholds were chosen on temperature-scaled probabilities
    (``evaluate --calibrated``), so whoever applies them must scale by it first."""
    data = {
        "format": FORMAT,
        "policy": policy,
        "chosen_on": chosen_on,
        "values": {k: float(v) for k, v in values.items()},
        "label_names": list(values),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "temperature": temperature,
        "written_by": f"chestxai evaluate --split {evaluated_split}",
    }
    write_json(data, run.thresholds)
    return data


def read_thresholds(run: RunDir) -> dict[str, Any] | None:
    """The parsed ``thresholds.json`` or None when the run has none; malformed files are an error."""
    if not run.thresholds.exists():
        return None
    data = read_json(run.thresholds)
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
        raise ValueError(
            f"{run.thresholds} holds no 'values' mapping; delete it and re-run `chestxai evaluate {run.root}`"
        )
    return data


def operating_thresholds(
    run: RunDir,
    label_names: list[str],
    checkpoint_thresholds: dict[str, float] | None = None,
    epoch: int | None = None,
) -> OperatingThresholds:
    """Thresholds to decide with: ``thresholds.json`` when it fits the model, else the checkpoint's.

    ``epoch`` is the checkpoint's epoch: thresholds chosen for another epoch (e.g. evaluated while
    training was still improving the checkpoint) are stale and ignored with a warning.
    """
    data = read_thresholds(run)
    if data is not None:
        values = data["values"]
        stale = epoch is not None and data.get("epoch") is not None and int(data["epoch"]) != int(epoch)
        if set(values) != set(label_names):
            log.warning(
                "%s is for labels %s, not %s; ignoring it", run.thresholds, sorted(values), label_names
            )
        elif stale:
            log.warning(
                "%s was chosen for checkpoint epoch %s but checkpoint.pt is epoch %s; ignoring it "
                "(re-run `chestxai evaluate %s`)",
                run.thresholds,
                data["epoch"],
                epoch,
                run.root,
            )
        else:
            return OperatingThresholds(
                {n: float(values[n]) for n in label_names},
                "thresholds.json",
                data.get("policy"),
                data.get("temperature"),
            )
    if checkpoint_thresholds:
        return OperatingThresholds(
            {n: float(checkpoint_thresholds.get(n, DEFAULT)) for n in label_names}, "checkpoint"
        )
    return OperatingThresholds({n: DEFAULT for n in label_names}, f"default {DEFAULT}")

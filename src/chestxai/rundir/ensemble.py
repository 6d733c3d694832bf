"""``RUN/ensemble.json``: what makes a run directory an ensemble (members and their weights).

An ensemble run directory is complete without a checkpoint of its own: ``config.yaml``,
``splits.csv`` (the members' common split), ``predictions.csv``, ``metrics.json`` and
``thresholds.json`` are written like a trained run's, so ``compare``, ``report`` and ``evaluate``
read it like any run. The members are the model: prediction averages their probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chestxai.rundir.jsonfile import read_json, write_json
from chestxai.rundir.layout import RunDir

FORMAT = 1


@dataclass(frozen=True)
class EnsembleManifest:
    members: list[Path]  # member run directories
    weights: list[float]  # same order, on the simplex
    task: str
    label_names: list[str]
    cache_dir: str | None  # the prepared cache every member was trained on
    extra: dict[str, Any]  # fit details (log-losses, split scored)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "ensemble",
            "runs": [str(m) for m in self.members],
            "weights": [float(w) for w in self.weights],
            "task": self.task,
            "label_names": list(self.label_names),
            "cache_dir": self.cache_dir,
            **self.extra,
        }


def write_ensemble(run: RunDir, manifest: EnsembleManifest) -> Path:
    return write_json(manifest.as_dict(), run.ensemble)


def read_ensemble(run: RunDir) -> EnsembleManifest:
    if not run.ensemble.is_file():
        raise FileNotFoundError(f"{run.root} has no ensemble.json: it is not an ensemble run")
    data = read_json(run.ensemble)
    missing = [k for k in ("runs", "weights", "task", "label_names") if k not in data]
    if missing or len(data.get("runs", ())) != len(data.get("weights", ())):
        raise ValueError(
            f"{run.ensemble} is not a chestxai ensemble manifest (missing {missing} or runs/weights differ in "
            f"length); re-create it with `chestxai ensemble RUN... --out {run.root}`"
        )
    known = {"format", "kind", "runs", "weights", "task", "label_names", "cache_dir"}
    return EnsembleManifest(
        [Path(r) for r in data["runs"]],
        [float(w) for w in data["weights"]],
        str(data["task"]),
        list(data["label_names"]),
        data.get("cache_dir"),
        {k: v for k, v in data.items() if k not in known},
    )

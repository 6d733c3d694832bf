"""The run directory: the interface between training, evaluation, explanation and reports.

``runs/<name>/`` holds::

    config.yaml        fully resolved training config
    checkpoint.pt      best weights + everything needed to rebuild model and preprocessing
    last.pt            last-epoch checkpoint (resume)
    history.csv        one row per epoch
    splits.csv         image_id, row (in the cache), split: the exact split training used
    predictions.csv    one row per image: image_id, patient_id, split, p_<label>, y_<label>
    metrics.json       evaluation metrics
    figures/  cams/    plots, heatmaps
    report.html

Every stage after training reads from here and never needs the training process. The prepared
cache a run was trained on is ``config["data"]["cache_dir"]`` in the checkpoint's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def splits(self) -> Path:
        return self.root / "splits.csv"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def cams(self) -> Path:
        return self.root / "cams"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def require_checkpoint(self) -> Path:
        if not self.checkpoint.exists():
            raise FileNotFoundError(
                f"{self.root} has no checkpoint.pt: is it a run directory? Train one with "
                f"`chestxai train --config ... --run-dir {self.root}`"
            )
        return self.checkpoint


def prob_column(label: str) -> str:
    return f"p_{label}"


def target_column(label: str) -> str:
    return f"y_{label}"

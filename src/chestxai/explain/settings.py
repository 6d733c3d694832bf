"""ExplainSettings: every knob of an explanation run in one validated place (stored in the metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from chestxai.explain.faithfulness import SCORES
from chestxai.explain.localization import IOBB_THRESHOLDS
from chestxai.explain.methods import configure


@dataclass(frozen=True)
class ExplainSettings:
    """``threshold``: fraction of the heatmap maximum, or ``"otsu"``; ``tolerance``: pointing-game
    slack in pixels of the explained image; ``faithfulness_limit``: how many items get deletion/
    insertion and ROAD (both cost many forward passes per image; ROAD also a sparse solve per
    percentile), ``0`` to skip them; ``faithfulness_score``: what they score, ``"logit"`` (default: a
    saturated probability does not move) or ``"probability"``; ``sanity_limit``: how many items the
    randomisation sanity check (``--sanity``) explains per randomised model. ``method_options``: per method name, that method's own knobs
    (``{"scorecam": {"batch_size": 16}}``; see ``chestxai.explain.methods.method_options``), kept
    with the method rather than here so a new method adds none."""

    batch_size: int = 16
    threshold: float | str = 0.5
    max_boxes: int = 3
    min_area_fraction: float = 0.001
    tolerance: float = 0.0
    iobb_thresholds: tuple[float, ...] = IOBB_THRESHOLDS
    overlays: bool = True
    colormap: str = "jet"
    opacity: float = 0.5
    faithfulness_limit: int = 16
    steps: int = 20
    road_percentiles: tuple[int, ...] = field(default=(20, 40, 60, 80))
    faithfulness_score: str = "logit"
    sanity_limit: int = 16
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    # move maps onto the receptive-field centres of their cells (chestxai.explain.alignment);
    # False = pytorch-grad-cam's placement, (s - 1) / 2 px down-right at a stride-s ResNet stage
    align: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if isinstance(self.threshold, str):
            if self.threshold.lower() != "otsu":
                raise ValueError(f"threshold must be a fraction in [0, 1] or 'otsu', got {self.threshold!r}")
        elif not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(
                f"threshold must be a fraction of the heatmap maximum in [0, 1], got {self.threshold}"
            )
        if self.max_boxes < 1:
            raise ValueError(f"max_boxes must be >= 1, got {self.max_boxes}")
        if self.tolerance < 0:
            raise ValueError(f"tolerance is a distance in pixels (>= 0), got {self.tolerance}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")
        if self.faithfulness_limit < 0 or self.steps < 1:
            raise ValueError("faithfulness_limit must be >= 0 and steps >= 1")
        if any(not 0 < p < 100 for p in self.road_percentiles):
            raise ValueError(
                f"ROAD percentiles must lie strictly between 0 and 100, got {self.road_percentiles}"
            )
        if self.faithfulness_score not in SCORES:
            raise ValueError(
                f"faithfulness_score must be one of {', '.join(SCORES)}, got {self.faithfulness_score!r}"
            )
        if self.sanity_limit < 1:
            raise ValueError(f"sanity_limit must be >= 1 image, got {self.sanity_limit}")
        for name, options in self.method_options.items():
            configure(name, options)  # an unknown method or knob fails before any work

    def options_for(self, method: str) -> dict[str, Any]:
        """The knobs given for ``method`` (empty: its defaults)."""
        return dict(self.method_options.get(method, {}))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["method_options"] = {k: dict(v) for k, v in self.method_options.items()}
        d["iobb_thresholds"] = list(self.iobb_thresholds)
        d["road_percentiles"] = list(self.road_percentiles)
        return d

"""ExplainSettings: every knob of an explanation run in one validated place (stored in the metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from chestxai.errors import UserError
from chestxai.flags import setting

#: what deletion/insertion and ROAD score: ``chestxai.explain.faithfulness.SCORES`` (a test checks
#: they agree; not imported here, so that the CLI reads these settings without loading torch)
FAITHFULNESS_SCORES = ("logit", "probability")


def _iobb_thresholds() -> tuple[float, ...]:
    from chestxai.explain.localization import IOBB_THRESHOLDS

    return IOBB_THRESHOLDS


def parse_threshold(text: str) -> float | str:
    """``--threshold`` text: a fraction like 0.5, or ``otsu``."""
    if text.strip().lower() == "otsu":
        return "otsu"
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--threshold must be a fraction like 0.5 or 'otsu', got {text!r}") from None


def _seed(text: str) -> int:
    from chestxai.checks import parse_seed

    return parse_seed(text, "--seed")


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

    batch_size: int = setting(16, help="images per forward/backward pass", flag="--batch-size", bounds=">= 1")
    threshold: float | str = setting(
        0.5,
        help="box threshold: fraction of the heatmap maximum, or 'otsu'",
        flag="--threshold",
        parse=parse_threshold,
        bounds="in [0, 1] or otsu",
    )
    max_boxes: int = setting(3, help="boxes per heatmap (largest heatmap mass first)", flag="--max-boxes",
                             bounds=">= 1")  # fmt: skip
    min_area_fraction: float = setting(0.001, help="smallest box, as a fraction of the image")
    tolerance: float = setting(
        0.0, help="pointing-game tolerance in pixels", flag="--tolerance", bounds=">= 0"
    )
    iobb_thresholds: tuple[float, ...] = setting(factory=_iobb_thresholds, help="IoBB hit thresholds")
    overlays: bool = setting(True, help="write heatmap overlay PNGs", flag="--overlays")
    colormap: str = setting("jet", help="matplotlib colormap of the overlays", flag="--colormap")
    opacity: float = setting(0.5, help="heatmap opacity in overlays", flag="--opacity", bounds="in [0, 1]")
    faithfulness_limit: int = setting(
        16,
        help="items that get deletion/insertion and ROAD",
        flag="--faithfulness-limit",
        bounds=">= 0 (0 = none)",
    )
    steps: int = setting(20, help="deletion/insertion steps")
    road_percentiles: tuple[int, ...] = setting((20, 40, 60, 80), help="ROAD's removal percentiles")
    faithfulness_score: str = setting(
        "logit",
        help="what deletion/insertion and ROAD score (logit: a saturated probability does not move)",
        flag="--faithfulness-score",
        choices=FAITHFULNESS_SCORES,
    )
    sanity_limit: int = setting(
        16, help="items the sanity check explains per randomised model", flag="--sanity-limit", bounds=">= 1"
    )
    method_options: Mapping[str, Mapping[str, Any]] = setting(factory=dict, help="per method name, its knobs")
    seed: int = setting(
        0, help="seed of the random control and ROAD's imputation noise", flag="--seed", parse=_seed,
        bounds="in [0, 2**32)",
    )  # fmt: skip
    # move maps onto the receptive-field centres of their cells (chestxai.explain.alignment);
    # False = pytorch-grad-cam's placement, (s - 1) / 2 px down-right at a stride-s ResNet stage
    align: bool = setting(
        True,
        help="move each map onto the receptive-field centres of its cells (3.5 px up-left at a ResNet's "
        "layer2, 15.5 px at layer4); --no-align keeps pytorch-grad-cam's placement",
        flag="--align",
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        if isinstance(self.threshold, str):
            if self.threshold.lower() != "otsu":
                raise UserError(f"threshold must be a fraction in [0, 1] or 'otsu', got {self.threshold!r}")
        elif not 0.0 <= float(self.threshold) <= 1.0:
            raise UserError(
                f"threshold must be a fraction of the heatmap maximum in [0, 1], got {self.threshold}"
            )
        if self.max_boxes < 1:
            raise UserError(f"max_boxes must be >= 1, got {self.max_boxes}")
        if self.tolerance < 0:
            raise UserError(f"tolerance is a distance in pixels (>= 0), got {self.tolerance}")
        if not 0.0 <= self.opacity <= 1.0:
            raise UserError(f"opacity must be in [0, 1], got {self.opacity}")
        if self.faithfulness_limit < 0 or self.steps < 1:
            raise UserError("faithfulness_limit must be >= 0 and steps >= 1")
        if any(not 0 < p < 100 for p in self.road_percentiles):
            raise UserError(
                f"ROAD percentiles must lie strictly between 0 and 100, got {self.road_percentiles}"
            )
        if self.faithfulness_score not in FAITHFULNESS_SCORES:
            raise UserError(
                f"faithfulness_score must be one of {', '.join(FAITHFULNESS_SCORES)}, "
                f"got {self.faithfulness_score!r}"
            )
        if self.sanity_limit < 1:
            raise UserError(f"sanity_limit must be >= 1 image, got {self.sanity_limit}")
        from chestxai.explain.methods import configure

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

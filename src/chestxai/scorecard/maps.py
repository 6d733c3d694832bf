"""``MapSet``: one run's maps of one (method, layer) on one split's items, with what scores them.

The one hand-over between computing maps (:mod:`chestxai.scorecard.collect`) and every scoring
protocol (localisation, randomisation, repeatability): the protocols take arrays, never a run, so
each can be tested on hand-made maps and masks.

Items are (image, finding) pairs. ``truth[i]`` is the finding's ground-truth region on the item's
image (boxes rasterised into it), a boolean array at the image's size: all False for a known
negative (the image's label for that finding is 0), ``None`` where nothing is known. CheXlocalize
scores negatives too (an empty predicted mask on an empty truth), which is what its probability
cutoff is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in the item's image pixels


@dataclass(frozen=True)
class MapSet:
    run: str  # the run directory's name (which model drew the maps)
    method: str
    layer: str
    split: str
    image_ids: list[str]
    findings: list[str]
    groups: list[str]  # bootstrap unit per item: the patient id, else the image id
    maps: np.ndarray  # N x S x S float32 in [0, 1], the model's input size
    probabilities: np.ndarray  # (N,) the model's probability of the item's finding
    truth: list[np.ndarray | None]  # per item: bool mask at the image's size, all False = negative
    boxes: list[list[Box]] = field(default_factory=list)  # per item: GT boxes (empty for masks only)

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        sizes = {
            "findings": len(self.findings),
            "groups": len(self.groups),
            "maps": len(self.maps),
            "probabilities": len(self.probabilities),
            "truth": len(self.truth),
        }
        if self.boxes:
            sizes["boxes"] = len(self.boxes)
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ValueError(f"MapSet of {n} items has other lengths: {wrong}")

    def __len__(self) -> int:
        return len(self.image_ids)

    def full_map(self, i: int) -> np.ndarray:
        """Item ``i``'s map resized (bilinear) to its truth's size, as CheXlocalize resizes to the image."""
        from chestxai.explain.overlay import resize_heatmap

        truth = self.truth[i]
        return self.maps[i] if truth is None else resize_heatmap(self.maps[i], truth.shape)

    def scored(self) -> np.ndarray:
        """Indices of the items with known truth (positives and known negatives)."""
        return np.array([i for i, t in enumerate(self.truth) if t is not None], np.int64)

    def positives(self) -> np.ndarray:
        """Indices of the items whose truth has at least one pixel."""
        return np.array([i for i, t in enumerate(self.truth) if t is not None and t.any()], np.int64)

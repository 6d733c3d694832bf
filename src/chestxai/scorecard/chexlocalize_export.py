"""One (method, layer)'s maps written for CheXlocalize's own scripts, so its code can score them.

A user with CheXpert's val/test and CheXlocalize's ground truth runs, on what this writes::

    python heatmap_to_segmentation.py --map_dir DIR/maps --output_path seg.json   # their Otsu
    python eval.py --metric hitmiss --gt_path gt_segmentations_test.json --pred_path DIR/maps
    python eval.py --metric iou --gt_path gt_segmentations_test.json --pred_path DIR/segmentations.json

``maps/`` holds one heatmap pickle per item (:func:`chestxai.explain.chexlocalize.write_heatmaps`:
the map at the model's input size, which their scripts resize bilinearly to ``cxr_dims``, the
item's image size; ``gt`` is 1 where the item's truth has pixels, else 0, also for unknown
truth, which their scripts do not read). ``segmentations.json`` holds OUR binarised masks when
given (e.g. at thresholds tuned on val), in their segmentation format. Findings that are not
among CheXlocalize's ten pathologies are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from chestxai.explain.chexlocalize import HeatmapRecord, write_heatmaps, write_segmentations
from chestxai.scorecard.maps import MapSet


def export_mapset(mapset: MapSet, folder: str | Path, masks: Mapping[int, np.ndarray] | None = None) -> dict:
    """Write ``folder/maps/*.pkl`` (and ``folder/segmentations.json`` from ``masks``: item index ->
    bool mask at the item's image size); returns what was written."""
    folder = Path(folder)
    records = []
    for i in range(len(mapset)):
        truth = mapset.truth[i]
        size = tuple(truth.shape) if truth is not None else tuple(mapset.maps[i].shape)
        gt = int(truth is not None and bool(truth.any()))
        records.append(
            HeatmapRecord(
                mapset.image_ids[i],
                mapset.findings[i],
                mapset.maps[i],
                size,
                float(mapset.probabilities[i]),
                gt,
            )
        )
    pickles = write_heatmaps(folder / "maps", records)
    seg = None
    if masks is not None:
        seg = write_segmentations(
            folder / "segmentations.json",
            {(mapset.image_ids[i], mapset.findings[i]): np.asarray(m, bool) for i, m in masks.items()},
        )
    return {"maps": str(folder / "maps"), "n_maps": len(pickles), "segmentations": str(seg) if seg else None}

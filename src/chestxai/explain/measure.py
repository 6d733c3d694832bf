"""Explain a list of items with one method and measure it: heatmaps, boxes, localization, faithfulness.

Compute only; :mod:`chestxai.explain.store` writes the results into a run directory. Heatmaps come
back at the model's input size (what the CAM saw); boxes and localization are measured after
resizing each heatmap to its image's own size, the pixel space of the ground truth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from chestxai.explain.anatomy import anatomy_summary, border_energy, outside_energy
from chestxai.explain.boxes import Box, boxes_from_heatmap
from chestxai.explain.explainer import Explainer
from chestxai.explain.faithfulness import deletion_insertion, road_scores
from chestxai.explain.items import Item
from chestxai.explain.layers import layer_grid
from chestxai.explain.localization import score_item, summarize
from chestxai.explain.overlay import resize_heatmap
from chestxai.explain.settings import ExplainSettings
from chestxai.models.preprocess import to_input

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("hit", "iou", "iobb", "energy")
FAITH_COLUMNS = ("deletion_auc", "insertion_auc", "road")
ANATOMY_COLUMNS = ("border_energy", "outside_lungs")


@dataclass
class MethodResult:
    """One method on a list of items. ``scores``: one row per item (NaN where not measured)."""

    method: str
    layer: str
    heatmaps: np.ndarray  # N x S x S float32 in [0, 1], model input size
    boxes: list[list[Box]]  # per item, pixels of the item's image
    scores: pd.DataFrame  # image_id, finding, hit, iou, iobb, energy, deletion_auc, insertion_auc, road
    seconds: float  # time spent computing heatmaps
    settings: ExplainSettings
    anatomy: dict | None = None  # border / outside-lung energy (chestxai.explain.anatomy)
    grid: tuple[int, int] | None = None  # the CAM grid at the layer (rows, cols)
    # the alignment shift applied (rows, cols px; chestxai.explain.alignment)
    shift: tuple[float, float] = (0.0, 0.0)

    def localization(self) -> dict | None:
        scored = self.scores.dropna(subset=["hit"])
        if scored.empty:
            return None
        return summarize(scored, self.settings.iobb_thresholds)

    def faithfulness(self) -> dict | None:
        done = self.scores.dropna(subset=["deletion_auc"])
        if done.empty:
            return None
        out = {"n": int(len(done)), "score": self.settings.faithfulness_score}
        for col in FAITH_COLUMNS:
            vals = done[col].dropna()
            out[col] = float(vals.mean()) if len(vals) else None
        return out

    @property
    def images_per_second(self) -> float:
        return len(self.heatmaps) / self.seconds if self.seconds > 0 else float("nan")


def model_inputs(images: Sequence[np.ndarray], preprocess: dict, device: torch.device | str) -> torch.Tensor:
    """uint8 images of any sizes -> one normalised batch at the checkpoint's input size."""
    return torch.cat([to_input(np.array(im)[None], preprocess) for im in images]).to(device)


def measure_method(
    model: torch.nn.Module,
    items: Sequence[Item],
    method: str,
    preprocess: dict,
    settings: ExplainSettings | None = None,
    layer: str | None = None,
    progress: bool = False,
    lung_masks: Sequence[np.ndarray | None] | None = None,
) -> MethodResult:
    """Heatmaps of ``method`` for every item, their boxes, and every applicable score.

    ``lung_masks[i]``: item ``i``'s lung mask at its image's size (or None), for the outside-lung
    energy; the border energy is measured on every map (:mod:`chestxai.explain.anatomy`)."""
    settings = settings or ExplainSettings()
    explainer = Explainer(
        model,
        method,
        layer=layer,
        seed=settings.seed,
        options=settings.options_for(method),
        align=settings.align,
    )
    indices = [it.index for it in items]
    start = time.perf_counter()
    heatmaps = explainer.explain_images(
        [it.image for it in items], indices, preprocess, settings.batch_size, progress
    )
    seconds = time.perf_counter() - start
    log.info("%s: %d heatmaps in %.1f s (layer %s)", method, len(items), seconds, explainer.layer_name)

    lungs = list(lung_masks) if lung_masks is not None else [None] * len(items)
    if len(lungs) != len(items):
        raise ValueError(f"got {len(lungs)} lung masks for {len(items)} items; give one (or None) per item")
    rows, all_boxes = [], []
    for it, hm, lung in zip(items, heatmaps, lungs, strict=True):
        full = resize_heatmap(hm, it.image.shape[:2])
        bxs = boxes_from_heatmap(full, settings.threshold, settings.max_boxes, settings.min_area_fraction)
        all_boxes.append(bxs)
        row = {"image_id": it.image_id, "finding": it.finding}
        if it.has_truth:
            row.update(
                score_item(full, [b.as_tuple() for b in bxs], it.gt_boxes, it.gt_mask, settings.tolerance)
            )
        else:
            row.update({c: np.nan for c in SCORE_COLUMNS})
        shown = np.ptp(hm) > 0  # an empty (constant) map points nowhere: no anatomy figures
        row["border_energy"] = border_energy(hm) if shown else np.nan
        has_lungs = shown and lung is not None and lung.any()
        row["outside_lungs"] = outside_energy(full, lung) if has_lungs else np.nan
        rows.append(row)
    scores = pd.DataFrame(rows, columns=["image_id", "finding", *SCORE_COLUMNS, *ANATOMY_COLUMNS])
    for col in FAITH_COLUMNS:
        scores[col] = np.nan

    n_faith = min(settings.faithfulness_limit, len(items))
    if n_faith:  # the long stage (minutes: a forward pass per deletion step and ROAD percentile)
        desc = f"{method}: faithfulness (deletion/insertion, ROAD)"
        _faithfulness(
            model, items[:n_faith], heatmaps[:n_faith], preprocess, settings, scores, progress, desc
        )
    anatomy = anatomy_summary(heatmaps) if len(items) else None
    if anatomy is not None and scores["outside_lungs"].notna().any():
        anatomy["outside_lungs"] = float(scores["outside_lungs"].mean())
        anatomy["n_lung_masks"] = int(scores["outside_lungs"].notna().sum())
    grid = layer_grid(model, explainer.layer_name, int(preprocess["size"]))
    return MethodResult(
        method, explainer.layer_name, heatmaps, all_boxes, scores, seconds, settings, anatomy, grid,
        explainer.last_shift,
    )  # fmt: skip


def _faithfulness(
    model,
    items,
    heatmaps,
    preprocess,
    settings: ExplainSettings,
    scores: pd.DataFrame,
    progress: bool = False,
    desc: str = "faithfulness",
) -> None:
    device = next(model.parameters()).device
    task = getattr(model, "task", "multilabel")
    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress, leave=False)
    for lo in range(0, len(items), settings.batch_size):
        chunk = items[lo : lo + settings.batch_size]
        x = model_inputs([it.image for it in chunk], preprocess, device)
        hm = heatmaps[lo : lo + len(chunk)]
        idx = [it.index for it in chunk]
        score = settings.faithfulness_score
        curves = deletion_insertion(
            model, x, hm, idx, settings.steps, batch_size=max(settings.batch_size, 16), score=score
        )
        road = road_scores(model, x, hm, idx, task, settings.road_percentiles, settings.seed, score)
        rows = np.arange(lo, lo + len(chunk))
        scores.loc[rows, "deletion_auc"] = curves["deletion_auc"]
        scores.loc[rows, "insertion_auc"] = curves["insertion_auc"]
        scores.loc[rows, "road"] = road
        bar.update(len(chunk))
    bar.close()

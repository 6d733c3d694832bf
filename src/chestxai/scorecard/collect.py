"""From a trained run to :class:`~chestxai.scorecard.maps.MapSet` s: the items, their truth, the maps.

**Items** are (image, finding) pairs of one split, chosen by the explain stage's rules
(:func:`chestxai.explain.items.build_items`: the pairs that have boxes or masks), plus, for every
finding that has ground truth somewhere in the split, the split's **known negatives** of it (label 0)
with an all-False truth: CheXlocalize scores them too (an empty predicted mask on an empty truth is
IoU 1, what its probability cutoff is for). Positives of such a finding *without* geometry cannot be
scored and are skipped, each listed with its reason. Truth = the finding's mask ORed with its boxes
rasterised, at the image's own size (the cached image the maps are drawn on).

Without any ground truth (the quickstart's PneumoniaMNIST has none) the items are explain's choice:
per image the run's top positive finding, else its top-scoring output, truth ``None``, so that the
randomisation and repeatability criteria, which need no truth, still run.

**Maps** come from the explain stage's :class:`~chestxai.explain.explainer.Explainer` (batched,
aligned like ``chestxai explain``), at the model's input size; the random control is the
``random`` method at the same layer (its grid is the layer's), so it runs through exactly the same
pipeline. The maps of *other* runs (``--seeds``, ``--architectures``) are drawn on the reference
run's items - the same images and findings - so repeatability compares like with like even when
the other run split its data differently.

**Groups** (the bootstrap unit) are the cache's patient ids, else the image ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chestxai.explain.explainer import Explainer
from chestxai.explain.items import (
    Item,
    build_items,
    cache_images,
    cache_mask_lookup,
    csv_mask_lookup,
    mask_labels,
    read_boxes_csv,
)
from chestxai.explain.layers import candidate_layers, resolve_layer
from chestxai.explain.localization import boxes_mask
from chestxai.explain.measure import model_inputs
from chestxai.explain.run import _top_outputs
from chestxai.explain.targets import UnknownFindingError, finding_index
from chestxai.models.trained_run import TrainedRun
from chestxai.scorecard.maps import MapSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroundTruth:
    """Where truth comes from: boxes (a table of pixels or fractions), masks (a lookup and the
    (image_id, label) pairs that have one), and a word for the report."""

    boxes: pd.DataFrame | None
    mask_lookup: object | None  # chestxai.explain.items.MaskLookup
    mask_pairs: pd.DataFrame | None
    source: str
    #: (image_id, label) pairs known to be negative with an empty mask (CheXlocalize's JSON lists
    #: them); None: known negatives come from the cache's labels
    negatives: pd.DataFrame | None = None

    @property
    def empty(self) -> bool:
        no_boxes = self.boxes is None or self.boxes.empty
        no_masks = self.mask_pairs is None or self.mask_pairs.empty
        return no_boxes and no_masks


def ground_truth(
    cache,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    gt_json: str | Path | None = None,
    label_names: Sequence[str] | None = None,
) -> GroundTruth:
    """``--boxes`` / ``--masks`` / ``--gt-json`` (CheXlocalize's segmentation JSON, its ids matched
    to the cache's by :func:`chestxai.explain.chexlocalize.read_truth`) when given, else what the
    run's cache holds (boxes and masks)."""
    if gt_json:
        from chestxai.explain.chexlocalize import read_truth

        ids = cache.frame["image_id"].astype(str).tolist()
        found = read_truth(gt_json, image_ids=ids, label_names=label_names)
        return GroundTruth(
            None, found.lookup, found.pairs, f"chexlocalize:{Path(gt_json).name}", found.negatives
        )
    if boxes:
        return GroundTruth(read_boxes_csv(boxes), None, None, f"boxes:{Path(boxes).name}")
    if masks:
        pairs = pd.read_csv(masks, dtype=str)
        if not {"image_id", "label"} <= set(pairs.columns):
            raise ValueError(
                f"{masks} lacks image_id/label columns; a masks CSV has image_id, label, kind, ref"
            )
        return GroundTruth(
            None, csv_mask_lookup(masks), pairs[["image_id", "label"]], f"masks:{Path(masks).name}"
        )
    cache_boxes = cache.boxes
    kinds = [w for w, has in (("boxes", not cache_boxes.empty), ("masks", not cache.mask_index.empty)) if has]
    return GroundTruth(
        cache_boxes, cache_mask_lookup(cache), mask_labels(cache), "cache " + "+".join(kinds or ["-"])
    )


@dataclass
class ItemSet:
    """One split's items with their truth and bootstrap groups (what every MapSet of it shares)."""

    split: str
    items: list[Item]
    truth: list[np.ndarray | None]
    groups: list[str]
    skipped: list[dict] = field(default_factory=list)
    source: str = ""

    @property
    def has_truth(self) -> bool:
        return any(t is not None for t in self.truth)

    def first_per_image(self, n: int | None = None) -> list[int]:
        """Index of the first item of each distinct image (at most ``n``): maps of different images."""
        seen: dict[str, int] = {}
        for i, it in enumerate(self.items):
            if it.image_id not in seen:
                seen[it.image_id] = i
        out = list(seen.values())
        return out if n is None else out[:n]

    def counts(self) -> dict:
        pos = sum(1 for t in self.truth if t is not None and t.any())
        neg = sum(1 for t in self.truth if t is not None and not t.any())
        return {
            "n_items": len(self.items),
            "n_images": len({it.image_id for it in self.items}),
            "n_positive": pos,
            "n_negative": neg,
            "n_skipped": len(self.skipped),
            "findings": sorted({it.finding for it in self.items}),
        }


def _groups(cache, rows: np.ndarray) -> dict[str, str]:
    frame = cache.frame
    ids = frame["image_id"].astype(str).to_numpy()
    patients = (
        frame["patient_id"].astype(str).to_numpy() if "patient_id" in frame else np.full(len(frame), "")
    )
    return {ids[r]: (patients[r] or ids[r]) for r in map(int, rows)}


def split_items(
    trained: TrainedRun,
    split: str,
    truth: GroundTruth,
    limit: int | None = None,
    batch_size: int = 16,
    required: bool = True,
) -> ItemSet | None:
    """The split's items (module docstring); None when ``required`` is False and the split is empty."""
    inputs = trained.inputs()
    cache = inputs.cache
    rows = inputs.rows(split) if required else inputs.optional_rows(split)
    if not len(rows):
        return None
    images = cache_images(cache, rows, split)
    names = trained.label_names
    items, skipped = build_items(
        images,
        names,
        boxes=None if truth.empty else truth.boxes,
        mask_lookup=None if truth.empty else truth.mask_lookup,
        mask_pairs=None if truth.empty else truth.mask_pairs,
        top_outputs=_top_outputs(trained, batch_size),
        limit=limit,
    )
    groups = _groups(cache, rows)
    with_truth = [it for it in items if it.has_truth]
    if truth.empty or not with_truth:
        if not truth.empty:
            log.info("no item of split %s has ground truth: scoring without it", split)
        return ItemSet(
            split, items, [None] * len(items), [groups[it.image_id] for it in items], skipped, "none"
        )
    masks = [_truth_mask(it) for it in with_truth]
    if truth.negatives is not None:
        negatives, more_skipped = _listed_negatives(cache, rows, names, truth.negatives, limit), []
    else:
        negatives, more_skipped = _negatives_and_unscored(
            cache, rows, names, with_truth, _truth_pairs(truth), limit
        )
    items = with_truth + negatives
    masks += [np.zeros(it.image.shape[:2], bool) for it in negatives]
    return ItemSet(
        split, items, masks, [groups[it.image_id] for it in items], skipped + more_skipped, truth.source
    )


def _truth_mask(it: Item) -> np.ndarray:
    shape = it.image.shape[:2]
    mask = boxes_mask(it.gt_boxes, shape)
    return mask | it.gt_mask if it.gt_mask is not None else mask


def _truth_pairs(truth: GroundTruth) -> set[tuple[str, str]]:
    """(image_id, lower-case label) of every pair with boxes or a mask (whether selected or not)."""
    pairs: set[tuple[str, str]] = set()
    for table in (truth.boxes, truth.mask_pairs):
        if table is not None and not table.empty:
            pairs |= {
                (str(i), str(lab).lower()) for i, lab in table[["image_id", "label"]].itertuples(index=False)
            }
    return pairs


def _negatives_and_unscored(
    cache,
    rows: np.ndarray,
    names: Sequence[str],
    positives: list[Item],
    with_geometry: set[tuple[str, str]],
    limit: int | None,
) -> tuple[list[Item], list[dict]]:
    """Known negatives (label 0) of every finding with truth, and the positives without geometry
    (skipped, with the reason; ``with_geometry``: the pairs that have some, lower-case labels).
    ``limit`` caps the negatives' distinct images as it caps the positives'."""
    ids = cache.frame["image_id"].astype(str).to_numpy()
    labels = np.asarray(cache.labels, np.float32)
    has = {(it.image_id, it.finding) for it in positives}
    negatives: list[Item] = []
    skipped: list[dict] = []
    images_used: set[str] = set()
    for finding in sorted({it.finding for it in positives}):
        try:
            col = finding_index(cache.label_names, finding)
        except UnknownFindingError:
            log.info("the cache has no label column for %s: no known negatives of it", finding)
            continue
        out = finding_index(names, finding)
        for r in map(int, rows):
            image_id, y = ids[r], labels[r, col]
            if (image_id, finding) in has or np.isnan(y):
                continue
            if y >= 0.5:
                if (image_id, finding.lower()) not in with_geometry:  # else only left out by the limit
                    skipped.append(
                        {"item": f"{image_id}/{finding}", "reason": "positive without boxes or mask"}
                    )
                continue
            if limit is not None and image_id not in images_used and len(images_used) >= limit:
                continue
            images_used.add(image_id)
            negatives.append(Item(image_id, np.asarray(cache.images[r]), finding, out))
    return negatives, skipped


def _listed_negatives(cache, rows: np.ndarray, names: Sequence[str], pairs: pd.DataFrame, limit: int | None):
    """Items of the (image_id, label) pairs a ground-truth file lists with an empty mask, in the split."""
    ids = cache.frame["image_id"].astype(str).to_numpy()
    row_of = {ids[r]: r for r in map(int, rows)}
    out: list[Item] = []
    used: set[str] = set()
    for image_id, label in pairs[["image_id", "label"]].astype(str).itertuples(index=False):
        r = row_of.get(image_id)
        if r is None:
            continue
        try:
            idx = finding_index(names, label)
        except UnknownFindingError:
            continue
        if limit is not None and image_id not in used and len(used) >= limit:
            continue
        used.add(image_id)
        out.append(Item(image_id, np.asarray(cache.images[r]), names[idx], idx))
    return out


def human_masks(path: str | Path, cache, item_set: ItemSet, label_names: Sequence[str]) -> dict:
    """CheXlocalize's human benchmark (its annotation or segmentation JSON) as masks at each scored
    item's truth size, by (image_id, finding); items the file does not cover are left out."""
    from chestxai.explain.chexlocalize import read_truth

    ids = cache.frame["image_id"].astype(str).tolist()
    found = read_truth(path, image_ids=ids, label_names=label_names)
    out = {}
    for it, t in zip(item_set.items, item_set.truth, strict=True):
        if t is None:
            continue
        mask = found.lookup(it.image_id, it.finding, t.shape)
        if mask is not None:
            out[(it.image_id, it.finding)] = mask
    return out


# --- maps -----------------------------------------------------------------------------------
def default_layers(trained: TrainedRun) -> list[str]:
    """The model's stages, shallow to deep (``--compare-layers``' grid), by their short names."""
    return [short_layer(n) for n in candidate_layers(trained.model, trained.preprocess["size"])]


def short_layer(name: str) -> str:
    """``backbone.layer2`` -> ``layer2``: the word a user types (``resolve_layer`` takes both)."""
    return name.removeprefix("backbone.")


def probabilities(trained: TrainedRun, items: Sequence[Item], batch_size: int = 16) -> np.ndarray:
    """The model's probability of each item's finding (one forward per batch)."""
    model = trained.model
    out = np.zeros(len(items), np.float32)
    with torch.inference_mode():
        for lo in range(0, len(items), batch_size):
            chunk = items[lo : lo + batch_size]
            x = model_inputs([it.image for it in chunk], trained.preprocess, trained.device)
            p = model.probabilities(model(x)).float().cpu().numpy()
            out[lo : lo + len(chunk)] = p[np.arange(len(chunk)), [it.index for it in chunk]]
    return out


def output_indices(trained: TrainedRun, items: Sequence[Item]) -> list[int]:
    """Each item's finding among ``trained``'s outputs (another run may order its labels otherwise)."""
    return [finding_index(trained.label_names, it.finding) for it in items]


def map_set(
    trained: TrainedRun,
    item_set: ItemSet,
    method: str,
    layer: str,
    *,
    seed: int = 0,
    options: dict | None = None,
    align: bool = True,
    batch_size: int = 16,
    probs: np.ndarray | None = None,
    progress: bool = False,
) -> MapSet:
    """``method``'s maps at ``layer`` of ``trained`` on ``item_set`` (any run: the items' images are
    resized to ``trained``'s input by its own preprocessing)."""
    resolve_layer(trained.model, layer)
    explainer = Explainer(trained.model, method, layer=layer, seed=seed, options=options, align=align)
    indices = output_indices(trained, item_set.items)
    items = item_set.items
    maps = explainer.explain_images(
        [it.image for it in items], indices, trained.preprocess, batch_size=batch_size, progress=progress
    )
    if probs is None:
        probs = probabilities(trained, items, batch_size)
    return MapSet(
        run=trained.run.root.name,
        method=method,
        layer=layer,
        split=item_set.split,
        image_ids=[it.image_id for it in items],
        findings=[it.finding for it in items],
        groups=list(item_set.groups),
        maps=np.asarray(maps, np.float32),
        probabilities=np.asarray(probs, np.float32),
        truth=list(item_set.truth),
        boxes=[list(it.gt_boxes) for it in items],
    )


def sanity_inputs(trained: TrainedRun, item_set: ItemSet, n: int) -> tuple[torch.Tensor, list[int]]:
    """The model inputs and output indices of the first ``n`` distinct images' items (what the
    randomisation check explains per randomised model)."""
    picks = item_set.first_per_image(n)
    items = [item_set.items[i] for i in picks]
    x = model_inputs([it.image for it in items], trained.preprocess, trained.device)
    return x, output_indices(trained, items)

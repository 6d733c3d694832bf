"""What gets explained: images (from the run's cache split or from files), findings, ground truth.

An :class:`Item` is one (image, finding) pair, with the finding's ground-truth boxes and mask in
the pixel space of that image when there are any. Which findings are explained:

* ``finding`` given: that finding on every selected image (scored where it has ground truth);
* else, ground truth available: every (image, finding) pair that has boxes/masks ("explain the
  boxed findings"); pairs whose finding the model lacks are skipped with that reason;
* else: per image, the model's top positive finding at the run's operating thresholds, else its
  top-scoring output (:mod:`chestxai.explain.choice`; the single logit of a binary model).

Files given with ``--images`` are decoded with :func:`chestxai.data.decode.decode_image`; a file
that fails is skipped and listed with its reason, never fatal.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.explain.box_files import BOX_COLUMNS, boxes_in_pixels, read_box_file
from chestxai.explain.targets import UnknownFindingError, finding_index

log = logging.getLogger(__name__)

MaskLookup = Callable[[str, str, tuple[int, int]], "np.ndarray | None"]


@dataclass
class Item:
    image_id: str
    image: np.ndarray  # uint8 H x W, as shown in overlays and measured against
    finding: str
    index: int  # model output explained
    gt_boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    gt_mask: np.ndarray | None = None

    @property
    def has_truth(self) -> bool:
        return bool(self.gt_boxes) or (self.gt_mask is not None and bool(self.gt_mask.any()))


@dataclass
class ImageSet:
    """Selected images (uint8, any sizes) with their ids, and what could not be loaded."""

    ids: list[str]
    images: list[np.ndarray]
    source: str
    skipped: list[dict] = field(default_factory=list)


# --- images ---------------------------------------------------------------------------------
def cache_images(cache, rows: Sequence[int], split: str) -> ImageSet:
    ids = cache.frame["image_id"].astype(str).to_numpy()
    return ImageSet([str(ids[r]) for r in rows], [cache.images[int(r)] for r in rows], f"split:{split}")


def decode_files(paths: Sequence[str | Path]) -> ImageSet:
    """Decode image files to uint8 grayscale; failures are skipped with their reason."""
    from chestxai.data.decode import decode_image

    ids: list[str] = []
    images: list[np.ndarray] = []
    skipped: list[dict] = []
    for p in paths:
        try:
            unit = decode_image(p)
        except (OSError, ValueError) as exc:  # DecodeError is a ValueError; missing files are OSErrors
            reason = getattr(exc, "reason", None) or str(exc)
            log.warning("skipping %s: %s", p, reason)
            skipped.append({"item": str(p), "reason": reason})
            continue
        ids.append(Path(p).name)
        images.append(np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8))
    return ImageSet(ids, images, "files", skipped)


# --- ground truth ---------------------------------------------------------------------------
def read_boxes_csv(path: str | Path) -> pd.DataFrame:
    """A ground-truth boxes file: official NIH / RSNA files as distributed, or the project's
    ``image_id, label, x, y, w, h`` (see :mod:`chestxai.explain.box_files`)."""
    return read_box_file(path)


def cache_mask_lookup(cache) -> MaskLookup | None:
    index = cache.mask_index
    if index.empty:
        return None
    groups = {k: np.asarray(v) for k, v in index.groupby(["image_id", "label"]).groups.items()}

    def lookup(image_id: str, label: str, shape: tuple[int, int]) -> np.ndarray | None:
        rows = groups.get((image_id, label))
        if rows is None:
            return None
        return _fit(np.any(np.stack([cache.masks[int(r)] > 0 for r in rows]), axis=0), shape)

    return lookup


def csv_mask_lookup(path: str | Path) -> MaskLookup:
    """Masks from a masks table (``image_id, label, kind, ref, height, width``; see chestxai.data.table)."""
    from chestxai.data.masks import load_mask

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"masks file {path} does not exist")
    table = pd.read_csv(path, dtype={"image_id": str, "label": str, "ref": str})
    need = ("image_id", "label", "kind", "ref")
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path} lacks columns {missing}; a masks CSV has image_id, label, kind (rle|png), ref, height, width"
        )

    def lookup(image_id: str, label: str, shape: tuple[int, int]) -> np.ndarray | None:
        rows = table[(table["image_id"] == image_id) & (table["label"] == label)]
        if rows.empty:
            return None
        return _fit(load_mask(rows, path.parent) > 0, shape)

    return lookup


def _fit(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    if mask.shape == tuple(shape):
        return mask.astype(bool)
    resized = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)


def mask_labels(cache) -> pd.DataFrame:
    return (
        cache.mask_index[["image_id", "label"]]
        if not cache.mask_index.empty
        else pd.DataFrame(columns=["image_id", "label"])
    )


# --- items ----------------------------------------------------------------------------------
def build_items(
    images: ImageSet,
    label_names: Sequence[str],
    finding: str | None = None,
    boxes: pd.DataFrame | None = None,
    mask_lookup: MaskLookup | None = None,
    mask_pairs: pd.DataFrame | None = None,
    top_outputs: Callable[[list[np.ndarray]], np.ndarray] | None = None,
    limit: int | None = None,
) -> tuple[list[Item], list[dict]]:
    """Items to explain and the skipped ones (see module docstring for the rules).

    ``mask_pairs`` lists the (image_id, label) pairs that have masks (for the ground-truth mode);
    ``top_outputs(images) -> indices`` picks the output per image when nothing else decides.
    ``limit`` caps the number of distinct images (all their findings are kept).
    """
    skipped: list[dict] = []
    boxes = boxes if boxes is not None else pd.DataFrame(columns=list(BOX_COLUMNS))
    # a box file may name images by stem (RSNA's patientId for <patientId>.dcm): match those too
    by_stem = {Path(i).stem: i for i in images.ids}
    ids = boxes["image_id"].astype(str)
    boxes = boxes.assign(image_id=ids.where(ids.isin(set(images.ids)), ids.map(by_stem).fillna(ids)))
    box_groups = (
        {(str(i), str(lab)): g for (i, lab), g in boxes.groupby(["image_id", "label"])} if len(boxes) else {}
    )
    truth_pairs = set(box_groups)
    if mask_pairs is not None and not mask_pairs.empty:
        truth_pairs |= set(map(tuple, mask_pairs[["image_id", "label"]].astype(str).to_numpy()))
    selected = set(images.ids)
    truth_pairs = {p for p in truth_pairs if p[0] in selected}
    # ground-truth labels may be spelt differently from the model's outputs (case): map them
    aliases: dict[str, set[str]] = {}
    for label in {lab for _, lab in truth_pairs}:
        with contextlib.suppress(UnknownFindingError):
            aliases.setdefault(label_names[finding_index(label_names, label)], set()).add(label)

    def truth(image_id: str, name: str, shape) -> tuple[list, np.ndarray | None]:
        bxs: list = []
        mask = None
        for label in sorted(aliases.get(name, {name})):
            g = box_groups.get((image_id, label))
            if g is not None:
                bxs += boxes_in_pixels(g, shape)
            m = mask_lookup(image_id, label, shape) if mask_lookup is not None else None
            if m is not None:
                mask = m if mask is None else (mask | m)
        return bxs, mask

    pairs: list[tuple[int, str, int]] = []  # (image position, finding name, output index)
    if finding is not None:
        idx = finding_index(label_names, finding)
        pairs = [(i, label_names[idx], idx) for i in range(len(images.ids))]
    elif truth_pairs:
        position = {image_id: i for i, image_id in enumerate(images.ids)}
        done: set[tuple[int, int]] = set()
        for image_id, label in sorted(truth_pairs, key=lambda p: (position[p[0]], p[1])):
            try:
                idx = finding_index(label_names, label)
            except UnknownFindingError:
                skipped.append(
                    {
                        "item": f"{image_id}/{label}",
                        "reason": f"the model has no output for finding {label!r}",
                    }
                )
                continue
            if (position[image_id], idx) not in done:
                done.add((position[image_id], idx))
                pairs.append((position[image_id], label_names[idx], idx))
    else:
        n = (
            len(images.ids) if limit is None else min(limit, len(images.ids))
        )  # predict only what is explained
        if len(label_names) == 1:
            chosen = np.zeros(n, np.int64)
        elif top_outputs is None:
            raise ValueError(
                "no finding given and no ground truth: pass --finding NAME to say what to explain"
            )
        else:
            chosen = np.asarray(top_outputs(list(images.images[:n])), np.int64)
        pairs = [(i, label_names[int(k)], int(k)) for i, k in enumerate(chosen)]

    items: list[Item] = []
    seen: set[int] = set()
    for pos, name, idx in pairs:
        if limit is not None and pos not in seen and len(seen) >= limit:
            continue
        seen.add(pos)
        image = np.asarray(images.images[pos])
        bxs, mask = truth(images.ids[pos], name, image.shape[:2])
        items.append(Item(images.ids[pos], image, name, idx, bxs, mask))
    return items, skipped

"""CheXlocalize's files, read and written: ground truth in, chestxai's maps and masks out.

CheXlocalize (Saporta et al., Nature Machine Intelligence 2022; github.com/rajpurkarlab/cheXlocalize)
publishes radiologists' segmentations of CheXpert's val and test images for 10 pathologies, and
evaluation scripts (``heatmap_to_segmentation.py``, ``eval.py``). This module speaks their formats,
checked against their README and scripts (commit 2a79492):

* **segmentation JSON** (``gt_segmentations_{val,test}.json``, the human benchmark's
  ``hb_segmentations_test.json``, and what ``heatmap_to_segmentation.py`` writes): ``{cxr_id:
  {pathology: {"size": [h, w], "counts": str}}}``, each mask a COCO compressed RLE of the mask
  in column-major order (pycocotools' ``mask.encode`` of a Fortran-ordered uint8 array, counts
  decoded to ``str``). A CXR with no segmentation for a pathology holds an all-zero mask.
* **annotation JSON** (``gt_annotations_val.json``, ``hb_annotations_test.json``): ``{cxr_id:
  {"img_size": [h, w], pathology: [[[x, y], ...], ...]}}``, polygons in pixel coordinates,
  rasterised here as their ``annotation_to_segmentation.py`` does (PIL polygon, outline and fill).
* **heatmap pickles** (``<cxr_id>_<pathology>_map.pkl``, one per image and pathology): a pickled
  dict with ``map`` (float32 torch tensor ``(1, 1, h, w)``, any resolution: they resize it to
  the image bilinearly), ``prob`` (float), ``task`` (their pathology name), ``gt`` (0/1),
  ``cxr_img`` (float32 tensor ``(3, h, w)`` in [0, 1]) and ``cxr_dims`` (the image's **(w, h)**).
  These files are written for THEIR code, which unpickles them; chestxai never loads a pickle
  (only the test that checks what is written does).

Names meet through two rules, stated once here:

* **image ids**: CheXlocalize's ``patient64541_study1_view1_frontal`` is the chexpert reader's
  cache id ``valid/patient64541/study1/view1_frontal.jpg`` (or ``test/...``): the path from the
  ``patientNNNNN`` folder on, without the extension, ``/`` read as ``_``
  (:func:`chexlocalize_id`). An id that already has that form is its own CheXlocalize id.
* **pathologies**: through :data:`chestxai.labels.SYNONYMS` (their ``Airspace Opacity`` is
  CheXpert's ``Lung Opacity``; ``Pleural Effusion`` is NIH's ``Effusion``), matched against the
  model's label names when given, else against CheXpert's.

Masks are read as ground truth the explain stage already understands: a
:data:`~chestxai.explain.items.MaskLookup` and the ``(image_id, label)`` pairs that have a
non-empty mask (:func:`read_truth`).
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.errors import UserError
from chestxai.explain.coco_rle import decode_mask, encode_mask, rle_runs
from chestxai.explain.items import MaskLookup
from chestxai.explain.items import _fit as fit_mask
from chestxai.labels import spelling_in

log = logging.getLogger(__name__)

# eval_constants.LOCALIZATION_TASKS: the 10 pathologies CheXlocalize segments, in its spelling
TASKS = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Lesion", "Airspace Opacity", "Edema",
    "Consolidation", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Support Devices",
)  # fmt: skip
_PATIENT = re.compile(r"^patient\d+$")


# --- names ----------------------------------------------------------------------------------
def chexlocalize_id(image_id: str) -> str:
    """Our image id -> CheXlocalize's CXR id (``valid/patient1/study1/view1_frontal.jpg`` ->
    ``patient1_study1_view1_frontal``); an id without a ``patientNNNNN`` folder keeps its stem."""
    parts = [p for p in str(image_id).replace("\\", "/").split("/") if p]
    if not parts:
        raise UserError(
            f"image id {image_id!r} is empty; CheXlocalize ids look like patient64541_study1_view1_frontal"
        )
    parts[-1] = re.sub(r"\.(jpe?g|png|dcm)$", "", parts[-1], flags=re.IGNORECASE)
    start = next((i for i, p in enumerate(parts) if _PATIENT.match(p)), len(parts) - 1)
    return "_".join(parts[start:])


def task_name(label: str) -> str | None:
    """Our label -> CheXlocalize's pathology name (``Lung Opacity`` -> ``Airspace Opacity``), else None."""
    return spelling_in(label, TASKS)


def _label_name(task: str, label_names: Sequence[str] | None) -> str | None:
    if label_names is None:
        from chestxai.data.readers.chexpert import LABELS as label_names
    return spelling_in(task, label_names)


def _check_rle(rle: Mapping, where: str) -> bool:
    """Validate one RLE against its size; returns whether the mask has any pixel."""
    h, w = _size(rle["size"], where)
    try:
        runs = rle_runs(rle["counts"])
    except ValueError as exc:
        raise UserError(
            f"{where}: counts is not a COCO RLE string ({exc}); regenerate it with pycocotools"
        ) from exc
    if any(r < 0 for r in runs) or sum(runs) != h * w:
        raise UserError(
            f"{where}: the runs cover {sum(runs)} pixels, not size {h} x {w} = {h * w}; "
            "the size or the counts are wrong: regenerate the file with pycocotools"
        )
    return any(runs[1::2])


# --- reading ---------------------------------------------------------------------------------
def _load_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise UserError(
            f"{what} {path} does not exist; pass the CheXlocalize JSON file (e.g. gt_segmentations_val.json)"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); is this a CheXlocalize {what}?"
        ) from exc
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: a CheXlocalize {what} is a non-empty object {{cxr_id: {{pathology: ...}}}}")
    return data


def _size(value, where: str) -> tuple[int, int]:
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and v > 0 for v in value)
    )
    if not ok:
        raise UserError(
            f"{where}: size {value!r} is not [height, width] in positive pixels; fix or regenerate the file"
        )
    return int(value[0]), int(value[1])


def read_segmentations(path: str | Path) -> dict[str, dict[str, dict]]:
    """A segmentation JSON (ground truth, human benchmark or predictions), checked up front.

    Returns ``{cxr_id: {pathology: rle}}`` in the file's spelling. Every entry must be an object
    with ``size`` ``[h, w]`` and a string ``counts``, one size per CXR; a pathology outside
    CheXlocalize's ten is an error (a typo there would silently drop ground truth)."""
    path = Path(path)
    return _check_segmentations(_load_json(path, "segmentation JSON"), path)


def _check_segmentations(data: dict, path: Path) -> dict[str, dict[str, dict]]:
    for cxr_id, tasks in data.items():
        if not isinstance(tasks, dict):
            raise UserError(
                f"{path}: {cxr_id!r} holds {type(tasks).__name__}, not {{pathology: {{size, counts}}}}"
            )
        sizes = set()
        for task, rle in tasks.items():
            where = f"{path}: {cxr_id} / {task}"
            if task not in TASKS:
                raise UserError(f"{where}: unknown pathology; CheXlocalize's are {', '.join(TASKS)}")
            if not isinstance(rle, dict) or "size" not in rle or not isinstance(rle.get("counts"), str):
                raise UserError(
                    f'{where}: not a COCO RLE {{"size": [h, w], "counts": str}}; write it with pycocotools'
                )
            sizes.add(_size(rle["size"], where))
            _check_rle(rle, where)
        if len(sizes) > 1:
            raise UserError(
                f"{path}: {cxr_id} has masks of different sizes {sorted(sizes)}; one image has one size"
            )
    return data


def read_annotations(path: str | Path) -> dict[str, dict[str, dict]]:
    """A raw annotation JSON (polygons) rasterised into the segmentation form, checked up front.

    Rasterised as CheXlocalize's ``annotation_to_segmentation.py`` does (PIL ``polygon`` with
    outline and fill 1 on an image of ``img_size``), so the masks equal the ones it writes."""
    path = Path(path)
    return _rasterise(_load_json(path, "annotation JSON"), path)


def _rasterise(data: dict, path: Path) -> dict[str, dict[str, dict]]:
    from PIL import Image, ImageDraw

    out: dict[str, dict[str, dict]] = {}
    for cxr_id, entry in data.items():
        if not isinstance(entry, dict) or "img_size" not in entry:
            raise UserError(
                f"{path}: {cxr_id!r} lacks img_size; an annotation entry is {{img_size: [h, w], pathology: polygons}}"
            )
        h, w = _size(entry["img_size"], f"{path}: {cxr_id} / img_size")
        out[cxr_id] = {}
        for task in TASKS:
            canvas = Image.new("1", (w, h))
            for k, polygon in enumerate(entry.get(task, [])):
                try:
                    coords = [(float(x), float(y)) for x, y in polygon]
                except (TypeError, ValueError) as exc:
                    raise UserError(
                        f"{path}: {cxr_id} / {task} polygon {k}: not a list of [x, y] points"
                    ) from exc
                ImageDraw.Draw(canvas).polygon(coords, outline=1, fill=1)
            out[cxr_id][task] = encode_mask(np.array(canvas, dtype=bool))
        unknown = set(entry) - set(TASKS) - {"img_size"}
        if unknown:
            raise UserError(
                f"{path}: {cxr_id}: unknown pathology {sorted(unknown)[0]!r}; CheXlocalize's are {', '.join(TASKS)}"
            )
    return out


@dataclass
class Truth:
    """CheXlocalize masks as chestxai ground truth.

    ``lookup(image_id, label, shape)`` gives the mask at ``shape`` (shrunk to a square cache size
    by area as the cache shrinks its masks, else nearest), or None;
    ``pairs`` lists the ``(image_id, label)`` with a non-empty mask (positives, like
    :func:`chestxai.explain.items.mask_labels`); ``negatives`` those whose mask is empty (known
    negatives: CheXlocalize scores them too); ``unmatched`` the CXR ids not among ``image_ids``
    and ``skipped`` the pathologies the model has no output for."""

    lookup: MaskLookup
    pairs: pd.DataFrame
    negatives: pd.DataFrame
    unmatched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_truth(
    path: str | Path, image_ids: Iterable[str] | None = None, label_names: Sequence[str] | None = None
) -> Truth:
    """Ground truth (or the human benchmark) from a CheXlocalize segmentation or annotation JSON.

    ``image_ids``: our ids (e.g. a CheXpert cache's), matched through :func:`chexlocalize_id`;
    without them the CXR ids are kept. ``label_names``: the model's outputs, which each
    pathology is respelt to (default: CheXpert's labels)."""
    path = Path(path)
    data = _load_json(path, "CheXlocalize JSON")
    first = next(iter(data.values()))
    data = (
        _rasterise(data, path)
        if isinstance(first, dict) and "img_size" in first
        else _check_segmentations(data, path)
    )
    ours = {chexlocalize_id(i): i for i in image_ids} if image_ids is not None else {c: c for c in data}
    masks: dict[tuple[str, str], dict] = {}
    pos, neg, unmatched, skipped = [], [], [], set()
    for cxr_id, tasks in data.items():
        image_id = ours.get(cxr_id)
        if image_id is None:
            unmatched.append(cxr_id)
            continue
        for task, rle in tasks.items():
            label = _label_name(task, label_names)
            if label is None:
                skipped.add(task)
                continue
            masks[(image_id, label)] = rle
            (pos if any(rle_runs(rle["counts"])[1::2]) else neg).append((image_id, label))
    if unmatched:
        log.warning(
            "%s: %d of %d CXR ids match no image (first: %s)", path, len(unmatched), len(data), unmatched[0]
        )

    def lookup(image_id: str, label: str, shape: tuple[int, int]) -> np.ndarray | None:
        rle = masks.get((image_id, label))
        return None if rle is None else _to_shape(decode_mask(rle), shape)

    cols = ["image_id", "label"]
    return Truth(
        lookup, pd.DataFrame(pos, columns=cols), pd.DataFrame(neg, columns=cols), unmatched, sorted(skipped)
    )


def _to_shape(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A full-resolution mask at a (square) cache size by the cache's own mask policy (area
    average, keep pixels at least half covered: :func:`chestxai.data.resize.resize_mask`), as the
    cache stores its masks; nearest (:func:`chestxai.explain.items.MaskLookup`'s rule) otherwise.
    Why not nearest when shrinking: CheXlocalize's thin masks (Support Devices) alias; on its
    sample, 2828 x 2320 -> 64 px, nearest and area masks of a support device overlap at IoU 0.35."""
    from chestxai.data.resize import resize_mask

    shape = (int(shape[0]), int(shape[1]))
    if (
        mask.shape != shape
        and shape[0] == shape[1]
        and mask.shape[0] >= shape[0]
        and mask.shape[1] >= shape[1]
    ):
        return resize_mask(mask, shape[0]).astype(bool)
    return fit_mask(mask, shape)


# --- writing ---------------------------------------------------------------------------------
def segmentation_json(masks: Mapping[tuple[str, str], np.ndarray]) -> dict[str, dict[str, dict]]:
    """Our binarised masks ``{(image_id, label): bool (h, w)}`` -> their segmentation JSON object.

    Every CXR gets all ten pathologies (an all-zero mask where we have none), as their
    ``eval.py`` reads ``pred[cxr_id][task]`` for each task; labels with no CheXlocalize
    pathology are left out (logged)."""
    by_image: dict[str, dict[str, np.ndarray]] = {}
    dropped = set()
    for (image_id, label), mask in masks.items():
        task = task_name(label)
        if task is None:
            dropped.add(label)
            continue
        by_image.setdefault(chexlocalize_id(image_id), {})[task] = np.asarray(mask, dtype=bool)
    if dropped:
        log.info("not CheXlocalize pathologies, left out: %s", ", ".join(sorted(dropped)))
    out: dict[str, dict[str, dict]] = {}
    for cxr_id, tasks in by_image.items():
        shapes = {m.shape for m in tasks.values()}
        if len(shapes) != 1:
            raise ValueError(
                f"{cxr_id}: masks of different shapes {sorted(shapes)}; resize them to the image first"
            )
        (shape,) = shapes
        zero = encode_mask(np.zeros(shape, bool))
        out[cxr_id] = {t: (encode_mask(tasks[t]) if t in tasks else zero) for t in TASKS}
    return out


def write_segmentations(path: str | Path, masks: Mapping[tuple[str, str], np.ndarray]) -> Path:
    """Write :func:`segmentation_json` to ``path`` (their ``eval.py --metric iou --pred_path``)."""
    from chestxai.atomic import write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(segmentation_json(masks)))
    return path


@dataclass
class HeatmapRecord:
    """One map as their scripts read it: ``heatmap`` at any resolution (they resize it to the
    image), the ``image`` it explains (uint8 or float in [0, 1], gray or RGB) or only its
    ``(h, w)`` (``cxr_img`` is then black: their scripts read the size from ``cxr_dims`` and
    never the pixels), the model's probability and the ground-truth label (0/1) of ``label``."""

    image_id: str
    label: str
    heatmap: np.ndarray
    image: np.ndarray | tuple[int, int]
    prob: float
    gt: int


def heatmap_payload(record: HeatmapRecord) -> dict:
    """The dict one ``<cxr_id>_<task>_map.pkl`` holds (keys, tensor shapes and dtypes as theirs)."""
    import torch

    task = task_name(record.label)
    if task is None:
        raise ValueError(f"{record.label!r} is not one of CheXlocalize's pathologies ({', '.join(TASKS)})")
    heat = np.asarray(record.heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"{record.image_id}/{record.label}: a heatmap is 2-D; got shape {heat.shape}")
    image = record.image
    if isinstance(image, tuple):
        image = np.zeros(tuple(int(v) for v in image), np.float32)
    image = np.asarray(image)
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if image.ndim == 2:
        image = np.repeat(image[None], 3, axis=0)
    elif image.ndim == 3 and image.shape[-1] in (1, 3):
        image = np.repeat(image, 3 // image.shape[-1], axis=-1).transpose(2, 0, 1)
    h, w = image.shape[1:]
    return {
        "map": torch.from_numpy(np.ascontiguousarray(heat))[None, None],
        "prob": float(record.prob),
        "task": task,
        "gt": int(record.gt),
        "cxr_img": torch.from_numpy(np.ascontiguousarray(image)),
        "cxr_dims": (int(w), int(h)),
    }


def write_heatmaps(folder: str | Path, records: Iterable[HeatmapRecord]) -> list[Path]:
    """Write one pickle per record for CheXlocalize's scripts (``--map_dir``); records whose
    label is not a CheXlocalize pathology are skipped. The files are for THEIR loader (a
    pickle of torch tensors); chestxai never reads them back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for record in records:
        if task_name(record.label) is None:
            log.info("%s/%s: not a CheXlocalize pathology, no pickle written", record.image_id, record.label)
            continue
        payload = heatmap_payload(record)
        path = folder / f"{chexlocalize_id(record.image_id)}_{payload['task']}_map.pkl"
        with path.open("wb") as f:
            pickle.dump(payload, f)
        written.append(path)
    return written

"""The semi-synthetic task: real backgrounds -> variants with and without a lesion -> a prepared cache.

Steps, each through the project's own machinery so the benchmark measures the real pipeline:

1. any reader's images are decoded and resized once by :func:`chestxai.data.prepare.prepare`
   (the usual reusable cache of the backgrounds);
2. each background gets ``variants`` copies with an independent gamma/brightness jitter; half of
   the copies (alternating) get a lesion (:mod:`.lesions`), and in a shortcut task every positive
   copy also carries the cue (:mod:`.shortcut`);
3. the copies are written as an :class:`~chestxai.data.table.ImageTable` (in-memory arrays; the
   lesion and cue masks as run-length rows of the masks side table) through ``prepare`` again, so
   the task is an ordinary cache: ``train`` trains on it, and ``explain`` finds the lesion masks
   as the ground truth of the finding ``Lesion``.

Splits are made per *background* (its id is the patient id and the split column is set here), so
copies of one X-ray never sit on both sides of a split. Labels: ``Lesion`` = 1 when drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from chestxai.bench.lesions import LesionSettings, draw_lesion, jitter, lung_field
from chestxai.bench.shortcut import add_cue, check_cue
from chestxai.data.masks import rle_encode
from chestxai.data.table import ImageTable

log = logging.getLogger(__name__)

FINDING = "Lesion"  # the task's one label, and the masks' label
CUE = "Cue"  # label of the cue masks (not a model output: explain skips those pairs)
MIN_SIZE = 32  # below this ResNet's layer2 grid is under 4 x 4 and lesions are a few pixels
MIN_BACKGROUNDS = 20  # fewer leave a val/test split with a handful of images


@dataclass(frozen=True)
class TaskSpec:
    """What the task is built from. ``shortcut``: "" (none), "tag" or "band"."""

    size: int = 128
    variants: int = 8
    lesion: LesionSettings = field(default_factory=LesionSettings)
    shortcut: str = ""
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    jitter: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.size) < MIN_SIZE:
            raise ValueError(
                f"--size {self.size} is too small for the lesion benchmark: use at least {MIN_SIZE} px "
                f"(ResNet's layer2 map is size/8 px per side; 128 is the benchmark's default)"
            )
        if not 1 <= int(self.variants) <= 64:
            raise ValueError(f"--variants must be in [1, 64], got {self.variants}")
        if self.shortcut:
            check_cue(self.shortcut)
        if not (0 < self.val_fraction < 1 and 0 < self.test_fraction < 1) or (
            self.val_fraction + self.test_fraction >= 0.9
        ):
            raise ValueError("val and test fractions must be in (0, 1) and leave at least 10% to train")

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "variants": self.variants,
            "lesion": self.lesion.as_dict() | self.lesion.in_pixels(self.size),
            "shortcut": self.shortcut or None,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "jitter": self.jitter,
            "seed": self.seed,
            "lung_field": "two ellipses (centres 31%/69% of the width, 47% of the height; "
            "semi-axes 13% x 27%), no lung masks used",
        }


@dataclass
class Task:
    """The built images (uint8), labels, masks and per-image facts (``frame``)."""

    images: np.ndarray  # N x S x S uint8
    labels: np.ndarray  # N float32 (1 = lesion)
    lesion_masks: list[np.ndarray | None]
    cue_masks: list[np.ndarray | None]
    frame: pd.DataFrame  # image_id, background, variant, split, lesion_row/col/radius/contrast, cue
    clean_images: np.ndarray | None = None  # shortcut tasks: the same images without the cue


# --- 1. backgrounds ------------------------------------------------------------------------------
def read_backgrounds(
    source: str,
    root: str | Path,
    size: int,
    *,
    options: dict[str, Any] | None = None,
    limit: int | None = None,
    cache: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Decode up to ``limit`` images of any reader (a seeded random subset) into a cache; return
    ``(uint8 images N x size x size, image ids)``. Errors (unknown source, an empty source, too few
    images) are raised before anything is decoded."""
    from chestxai.data.prepare import PrepareError, prepare
    from chestxai.data.reader_options import check_reader_options
    from chestxai.data.readers import read_table

    options = dict(options or {})
    check_reader_options(source, options)
    table = read_table(source, Path(root).expanduser(), **options)
    if len(table) == 0:
        raise PrepareError(
            f"--source {source} --root {root} lists no images; point --root at a folder of X-rays "
            "(`chestxai data summary` shows what a reader finds)"
        )
    if len(table) < MIN_BACKGROUNDS:
        raise ValueError(
            f"--source {source} --root {root} has {len(table)} images; the benchmark needs at least "
            f"{MIN_BACKGROUNDS} backgrounds (a few hundred for stable figures)"
        )
    if limit and len(table) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(len(table), size=int(limit), replace=False))
        table = table.subset(rows)
    table = _strip(table)
    from chestxai.paths import cache_root

    out = Path(cache).expanduser() if cache else cache_root() / "prepared"
    path = prepare(table, size=int(size), out=out, progress=progress)
    from chestxai.data.cache import PreparedCache

    pc = PreparedCache(path)
    if len(pc) < MIN_BACKGROUNDS:
        raise ValueError(
            f"only {len(pc)} images of --source {source} decoded (see {path}/prepare_report.json); "
            f"the benchmark needs at least {MIN_BACKGROUNDS}"
        )
    return np.asarray(pc.images), pc.frame["image_id"].astype(str).tolist()


def _strip(table: ImageTable) -> ImageTable:
    """The table without its findings, boxes and masks: only the pixels are used as backgrounds."""
    n = len(table)
    return ImageTable(
        source=f"{table.source}-backgrounds",
        frame=table.frame.assign(split=""),
        label_names=["background"],
        labels=np.zeros((n, 1), np.float32),
        task="binary",
        arrays=table.arrays,
        root=table.root,
        notes=list(table.notes),
        skipped=list(table.skipped),
    )


# --- 2. variants -------------------------------------------------------------------------------
def background_splits(n: int, spec: TaskSpec) -> np.ndarray:
    """``train``/``val``/``test`` per background (seeded), at least one background in each."""
    order = np.random.default_rng(spec.seed + 17).permutation(n)
    n_test = max(1, round(n * spec.test_fraction))
    n_val = max(1, round(n * spec.val_fraction))
    out = np.full(n, "train", dtype=object)
    out[order[:n_test]] = "test"
    out[order[n_test : n_test + n_val]] = "val"
    return out


def build_task(backgrounds: np.ndarray, ids: list[str], spec: TaskSpec, progress: bool = True) -> Task:
    """Variants of every background (module doc); deterministic for a given ``spec.seed``."""
    bg = np.asarray(backgrounds)
    if bg.ndim != 3 or bg.shape[1:] != (spec.size, spec.size):
        raise ValueError(f"backgrounds must be N x {spec.size} x {spec.size}, got {bg.shape}")
    rng = np.random.default_rng(spec.seed)
    field_ = lung_field(spec.size)
    splits = background_splits(len(bg), spec)
    n = len(bg) * spec.variants
    images = np.zeros((n, spec.size, spec.size), np.uint8)
    clean = np.zeros_like(images) if spec.shortcut else None
    labels = np.zeros(n, np.float32)
    lesion_masks: list[np.ndarray | None] = [None] * n
    cue_masks: list[np.ndarray | None] = [None] * n
    rows = []
    i = 0
    for b in tqdm(range(len(bg)), desc="lesion task", disable=not progress, leave=False):
        base = bg[b].astype(np.float32) / 255.0
        for k in range(spec.variants):
            img = jitter(base, rng, spec.jitter)
            positive = (k + (b if spec.variants % 2 else 0)) % 2 == 0
            facts = {
                "lesion_row": np.nan,
                "lesion_col": np.nan,
                "lesion_radius": np.nan,
                "lesion_contrast": np.nan,
            }
            if positive:
                img, lesion_masks[i], les = draw_lesion(img, rng, spec.lesion, field_)
                facts = {
                    "lesion_row": les.row,
                    "lesion_col": les.col,
                    "lesion_radius": les.radius,
                    "lesion_contrast": les.contrast,
                }
            if clean is not None:
                clean[i] = _to_u8(img)
                if positive:  # the cue goes with the class: only lesion images carry it
                    img, cue_masks[i] = add_cue(img, spec.shortcut, rng)
            images[i] = _to_u8(img)
            labels[i] = float(positive)
            rows.append(
                {
                    "image_id": f"{ids[b]}~v{k}",
                    "background": ids[b],
                    "variant": k,
                    "split": splits[b],
                    **facts,
                    "cue": spec.shortcut if cue_masks[i] is not None else "",
                }
            )
            i += 1
    return Task(images, labels, lesion_masks, cue_masks, pd.DataFrame(rows), clean)


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(img) * 255.0), 0, 255).astype(np.uint8)


# --- 3. the cache ------------------------------------------------------------------------------
def task_table(task: Task, source: str, clean: bool = False, rows: np.ndarray | None = None) -> ImageTable:
    """The task (``clean``: its cue-free images; ``rows``: a subset) as an ImageTable with masks."""
    rows = np.arange(len(task.images)) if rows is None else np.asarray(rows)
    images = task.clean_images if clean else task.images
    if images is None:
        raise ValueError("this task has no cue-free images (it was built without a shortcut)")
    f = task.frame.iloc[rows].reset_index(drop=True)
    frame = f.assign(path="", patient_id=f["background"], view="PA")
    masks = []
    for pos, r in enumerate(rows):
        pairs = [(FINDING, task.lesion_masks[r])]
        if not clean:
            pairs.append((CUE, task.cue_masks[r]))
        for label, m in pairs:
            if m is not None:
                s = m.shape[0]
                masks.append(
                    {"image_id": frame["image_id"][pos], "label": label, "kind": "rle",
                     "ref": rle_encode(m), "height": s, "width": s}
                )  # fmt: skip
    from chestxai.data.table import MASK_COLUMNS, empty_masks

    return ImageTable(
        source=source,
        frame=frame,
        label_names=[FINDING],
        labels=task.labels[rows][:, None],
        task="binary",
        masks=pd.DataFrame(masks, columns=list(MASK_COLUMNS)) if masks else empty_masks(),
        arrays=images[rows],
        notes=["semi-synthetic lesion task built by chestxai bench lesions"],
    )


def write_task(task: Task, out: str | Path, source: str, *, clean: bool = False,
               rows: np.ndarray | None = None, progress: bool = True) -> Path:  # fmt: skip
    """Write the task through ``prepare`` into ``out``; returns the cache directory."""
    from chestxai.data.prepare import prepare

    table = task_table(task, source, clean=clean, rows=rows)
    size = int(task.images.shape[-1])
    return prepare(table, size=size, out=Path(out), workers=1, progress=progress)

"""ScorecardSettings: everything ``chestxai scorecard RUN`` takes, with the help its flags show.

Kept free of numpy/torch so that the CLI generates the command's flags from these fields
(:mod:`chestxai.commands._flags`) without loading them. The lists (``seeds``, ``architectures``,
``methods``, ``layers``) are ``nargs`` options the command declares itself, as ``bench lesions``
does; ``n_boot`` is the CLI's one default (``commands._common.N_BOOT``), given by the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chestxai.checks import DEVICE_HELP, parse_device, parse_seed
from chestxai.errors import UserError
from chestxai.flags import setting

#: methods scored by default: every registered one that works at any layer and costs one batched
#: forward/backward (bench's default set without CAM, which is defined on the final layer only;
#: ScoreCAM - one forward per channel - and PCAM - a PCAM head - on request with --methods)
DEFAULT_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "eigencam")


def _optional_text(text: str) -> str:
    return text


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--limit must be a whole number of images, got {text!r}") from None
    if value < 1:
        raise ValueError(f"--limit must be >= 1 image, got {value}")
    return value


def _seed(text: str) -> int:
    return parse_seed(text, "--seed")


@dataclass(frozen=True)
class ScorecardSettings:
    """One scorecard: the run, the runs it is compared with, what is scored and how.

    ``seeds``: other runs of the same recipe (repeatability); ``architectures``: other models on the
    same data (reproducibility); ``methods`` / ``layers`` empty = :data:`DEFAULT_METHODS` / the
    model's stages (:func:`chestxai.explain.layers.candidate_layers`); ``out`` None = ``RUN/scorecard``.
    """

    run: str = setting(help="run directory (holds checkpoint.pt)")
    seeds: Sequence[str] = field(default=())
    architectures: Sequence[str] = field(default=())
    methods: Sequence[str] = field(default=())
    layers: Sequence[str] = field(default=())
    split: str = setting("test", help="split whose maps are scored", flag="--split")
    val_split: str = setting(
        "val", help="split on which thresholds and probability cutoffs are tuned (CheXlocalize)",
        flag="--val-split",
    )  # fmt: skip
    boxes: str | None = setting(
        None,
        help="ground-truth boxes: NIH BBox_List_2017.csv, RSNA labels, or image_id,label,x,y,w,h "
        "(default: the cache's)",
        flag="--boxes",
        parse=_optional_text,
        metavar="FILE",
        group="ground truth",
    )
    masks: str | None = setting(
        None,
        help="ground-truth masks table: image_id,label,kind (rle|png),ref,height,width (default: the cache's)",
        flag="--masks",
        parse=_optional_text,
        metavar="FILE",
        group="ground truth",
    )
    gt_json: str | None = setting(
        None,
        help="CheXlocalize ground-truth segmentation JSON (per image and pathology, COCO RLE; its CXR ids "
        "matched to the cache's, e.g. CheXpert's)",
        flag="--gt-json",
        parse=_optional_text,
        metavar="FILE",
        group="ground truth",
    )
    human_json: str | None = setting(
        None,
        help="CheXlocalize human benchmark (annotation or segmentation JSON): the percentage decrease of "
        "each method's localisation against it, with CIs",
        flag="--human",
        parse=_optional_text,
        metavar="FILE",
        group="ground truth",
    )
    limit: int | None = setting(
        None,
        help="score at most this many images with positives (and as many of known negatives) per split",
        flag="--limit",
        parse=_limit,
        bounds=">= 1",
    )
    n_boot: int = setting(1000, help="bootstrap replicates of every CI (patients resampled)")
    tolerance: float = setting(
        0.0,
        help="hit-rate (pointing game) tolerance in pixels of the image",
        flag="--tolerance",
        bounds=">= 0",
    )
    sanity_limit: int = setting(
        16, help="images the randomisation check explains per randomised model", flag="--sanity-limit",
        bounds=">= 2",
    )  # fmt: skip
    seed: int = setting(
        0, help="seed of the random control, the random pairs and the bootstrap", flag="--seed", parse=_seed,
        bounds="in [0, 2**32)",
    )  # fmt: skip
    device: str = setting("auto", help=DEVICE_HELP, flag="--device", parse=parse_device)
    batch_size: int = setting(16, help="images per forward/backward pass", flag="--batch-size", bounds=">= 1")
    align: bool = setting(
        True, help="move each map onto the receptive-field centres of its cells (as explain)", flag="--align"
    )
    chexlocalize: bool = setting(
        False,
        help="also write every (method, layer)'s test maps for CheXlocalize's own scripts: "
        "DIR/chexlocalize/<method>-<layer>/maps/*.pkl (their heatmap pickles) and segmentations.json (our "
        "Otsu masks in their RLE format); only CheXlocalize's ten pathologies",
        flag="--chexlocalize",
    )
    out: str | None = setting(
        None, help="output folder (default RUN/scorecard)", flag="--out", parse=_optional_text, metavar="DIR"
    )
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.run:
            raise UserError("scorecard needs a run directory: chestxai scorecard RUN")
        if self.boxes and self.masks:
            raise UserError("--boxes and --masks are two sources of the same ground truth; pass one of them")
        if self.gt_json and (self.boxes or self.masks):
            raise UserError(
                "--gt-json replaces --boxes/--masks (one ground truth per scorecard); pass one of them"
            )
        if self.limit is not None and self.limit < 1:
            raise UserError(f"limit must be >= 1 image, got {self.limit}")
        if self.n_boot < 0:
            raise UserError(f"n_boot must be >= 0 replicates, got {self.n_boot}")
        if self.tolerance < 0:
            raise UserError(f"tolerance is a distance in pixels (>= 0), got {self.tolerance}")
        if self.sanity_limit < 2:
            raise UserError(
                f"sanity_limit must be >= 2 images (maps of different images), got {self.sanity_limit}"
            )
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.split == self.val_split:
            raise UserError(
                f"--split and --val-split are both {self.split!r}: thresholds tuned on the scored images "
                "would flatter them; tune on another split"
            )

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(self.methods) or DEFAULT_METHODS

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        for k in ("seeds", "architectures", "methods", "layers"):
            d[k] = list(d[k])
        return d

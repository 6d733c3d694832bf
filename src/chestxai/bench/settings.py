"""BenchConfig: everything ``chestxai bench lesions`` takes, with the help its flags show.

Kept apart from :mod:`.run` (numpy, pandas, torch) so that the CLI can generate the command's
flags from these fields (``chestxai.commands._flags``) without loading them; the task itself
(:class:`~chestxai.bench.task.TaskSpec`) is built from ``--size``/``--seed`` on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chestxai.checks import DEVICE_HELP, parse_device, parse_seed
from chestxai.errors import UserError
from chestxai.flags import setting

DEFAULT_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "eigencam", "cam")


@dataclass
class BenchConfig:
    """Everything ``chestxai bench lesions`` takes; ``tolerance`` None = ``size / 32`` px (4 at 128)."""

    source: str = setting(help="reader name (nih, folder, medmnist, csv, ...)", flag="--source")
    root: str = setting(help="folder (or file) holding the images", flag="--root")
    out: str = setting(help="output folder DIR (new or empty; --force to reuse)", flag="--out")
    size: int = setting(128, help="image side in px (at least 32)", flag="--size")
    options: dict[str, Any] = setting(factory=dict, help="reader options (--option KEY=VALUE)")
    # 600 backgrounds x 8 variants, 6 epochs: val AUC 0.996 on NIH at 128 px, where 450 x 4 x 8 epochs
    # reached 0.975 and its maps missed more lesions (docs/BENCHMARKS.md)
    backgrounds: int = setting(600, help="real images used (seeded subset)", flag="--backgrounds",
                               bounds=">= 20")  # fmt: skip
    task: Any = None  # a bench.task.TaskSpec; None = the default task at this size and seed
    methods: Sequence[str] = DEFAULT_METHODS
    layers: Sequence[str] = ()
    model: str = setting("resnet18", help="architecture, trained from scratch", flag="--model")
    epochs: int = setting(6, help="training epochs", flag="--epochs")
    batch_size: int = setting(16, help="training batch size", flag="--batch-size")
    lr: float = setting(3e-3, help="learning rate (AdamW, cosine)", flag="--lr")
    # off by default: the lesions already vary per variant, and the loop's black fill taught border
    # cues (NIH 128 px: pointing game 0.59 with augmentation, 0.77 without; docs/BENCHMARKS.md)
    augment: bool = setting(
        False,
        help="the training loop's augmentation (the lesions already vary per variant, and the "
        "augmentation's black fill taught border cues)",
        flag="--augment",
    )
    # bfloat16/float16 mixed-precision training: off by default. On this project's AMX CPU it trains
    # NIH 128 px 1.67x faster but localized worse at seed 0 (pointing game 0.82-0.86 vs 0.91;
    # docs/BENCHMARKS.md), and the defaults must reach the 0.9
    amp: bool = setting(
        False,
        help="mixed-precision training, decided as train.amp on (bfloat16 on CPUs with native bfloat16, "
        "bfloat16/float16 on CUDA, else float32 with a warning); on an AMX CPU it trains 1.7x faster, but "
        "the NIH 128 px model localized worse, see docs/BENCHMARKS.md",
        flag="--amp",
    )
    tolerance: float | None = setting(
        None,
        help="pointing-game tolerance in px",
        flag="--tolerance",
        parse=float,
        bounds=">= 0; none = size/32",
    )
    explain_limit: int = setting(200, help="test lesions explained", flag="--explain-limit", metavar="N")
    faithfulness: int = setting(
        16, help="items with deletion/insertion/ROAD at each method's best layer (0 = off)",
        flag="--faithfulness-limit", metavar="N",
    )  # fmt: skip
    sanity: int = setting(
        8, help="images for the weight-randomisation check at the best layer (0 = off)",
        flag="--sanity-limit", metavar="N",
    )  # fmt: skip
    # label randomisation (Adebayo et al. 2018): a second model trained on permuted labels; it costs
    # a second training, so it is off unless asked for (``--label-sanity-limit N`` images)
    label_sanity: int = setting(
        0, help="label randomisation check: train a second model on permuted labels and compare each "
        "method's maps on N test lesions (costs a second training; 0 = off)",
        flag="--label-sanity-limit", metavar="N",
    )  # fmt: skip
    # the trust scorecard (issue 21): extra runs on the same task cache, then ``chestxai scorecard`` of
    # the benchmark run with them as --seeds / --architectures, on the lesion masks
    scorecard: bool = setting(
        False,
        help="after the benchmark, train the runs the trust scorecard compares (--scorecard-seeds more "
        "seeds of --model, one --scorecard-architecture) on the same task and write DIR/scorecard/",
        flag="--scorecard",
        group="scorecard",
    )
    # 1, not 2: at 64 px on 2 cores the benchmark (6.7 min) + 2 seeds (5.2 min each) + resnet34 (9.1 min)
    # already took 26 of the 30 minutes before the scorecard itself (docs/BENCHMARKS.md);
    # one extra seed measures repeatability (a pair of retrained models, as Arun et al.'s)
    scorecard_seeds: int = setting(
        1, help="extra seeds of --model for repeatability (seed+1, seed+2, ...; 0 = none; each one more "
        "training: 2 for the field's 3 seeds)",
        flag="--scorecard-seeds", metavar="N", bounds=">= 0", group="scorecard",
    )  # fmt: skip
    # resnet34: the same stage names and grids as resnet18 (layer2-4), so the maps of one (method,
    # layer) are comparable across the two architectures; 1.8x resnet18's step time at 64 px
    # (densenet121 1.5x and efficientnet_b0 0.8x, but their stages have other names and grids)
    scorecard_architecture: str = setting(
        "resnet34", help="the other architecture trained on the same task, for reproducibility ('' = none)",
        flag="--scorecard-architecture", metavar="NAME", group="scorecard",
    )  # fmt: skip
    # 100, not the benchmark's 200: at 64 px the scorecard of 6 methods x 3 layers with 1 seed and
    # resnet34 took 689 s at 200 (400 items with the known negatives), and the whole command must
    # stay within the 30 minutes on 2 cores (docs/BENCHMARKS.md)
    scorecard_limit: int = setting(
        100, help="images of each split the scorecard scores (0 = all)", flag="--scorecard-limit",
        metavar="N", bounds=">= 0", group="scorecard",
    )  # fmt: skip
    cache: str = setting(
        "", help="where the backgrounds' prepared cache goes (none = the user cache)", flag="--cache"
    )
    device: str = setting("auto", help=DEVICE_HELP, flag="--device", parse=parse_device)
    threads: int = setting(0, help="torch CPU threads (0 = torch's default)", flag="--threads")
    seed: int = setting(0, help="random seed", flag="--seed", parse=parse_seed)
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        from chestxai.bench.task import TaskSpec  # numpy/pandas: not for the CLI's --help

        self.task = self.task or TaskSpec(size=self.size, seed=self.seed)
        if self.task.size != self.size:
            raise UserError(f"task size {self.task.size} differs from --size {self.size}")
        if self.backgrounds < 20:
            raise UserError(f"--backgrounds must be at least 20, got {self.backgrounds}")
        if self.tolerance is None:
            self.tolerance = self.size / 32
        if self.tolerance < 0:
            raise UserError(f"--tolerance is a distance in pixels (>= 0), got {self.tolerance}")
        for name, value in (("--explain-limit", self.explain_limit), ("--faithfulness-limit", self.faithfulness),
                            ("--sanity-limit", self.sanity), ("--label-sanity-limit", self.label_sanity)):  # fmt: skip
            if value < 0:
                raise UserError(f"{name} must be >= 0, got {value}")
        if self.scorecard_seeds < 0:
            raise UserError(f"--scorecard-seeds must be >= 0, got {self.scorecard_seeds}")
        if self.scorecard_limit < 0:
            raise UserError(f"--scorecard-limit must be >= 0, got {self.scorecard_limit}")
        if self.scorecard and self.scorecard_architecture == self.model:
            raise UserError(
                f"--scorecard-architecture {self.scorecard_architecture} is --model itself: reproducibility "
                "compares another architecture (use --scorecard-seeds for more runs of the same one)"
            )

    @property
    def scorecard_run_seeds(self) -> list[int]:
        """Training seeds of the extra runs of ``model`` (``seed + 1``, ``seed + 2``, ...)."""
        return [self.seed + k for k in range(1, self.scorecard_seeds + 1)] if self.scorecard else []

"""``chestxai train``: train a classifier from a YAML recipe, flags overriding the recipe."""

from __future__ import annotations

import argparse

from chestxai.commands._common import add_common_flags
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.config import RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier (YAML recipe + flags)",
        description="Train a chest X-ray classifier. The recipe (configs/*.yaml) sets data, model and "
        "training options; flags and --set override it; the resolved config is saved in the run directory "
        "(runs/<name>/ by default). Multi-GPU: torchrun --nproc_per_node=N -m chestxai train ...",
    )
    p.add_argument("--config", help="YAML recipe, e.g. configs/pneumoniamnist_resnet18.yaml")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=False,
                   help="continue an interrupted run from its last.pt")  # fmt: skip
    # one flag per RunConfig field declared with a flag (chestxai.config): help, range, type from the field
    add_setting_flags(p, RunConfig, default_note="default: the recipe's, else {default}")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any recipe key, e.g. --set train.label_smoothing=0.1 (repeatable)",
    )
    add_common_flags(p, device=False)  # --device and --seed are train.device / train.seed above
    p.set_defaults(func=run)


def values_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Dotted config key -> the flag's value, for the flags given. Values go to the config as the
    Python objects argparse made (``--name 007`` is "007", ``--root "a #2"`` keeps its "#2"); only
    ``--set`` text is parsed, by the declared type of its key."""
    return setting_values(args, RunConfig)


def run(args: argparse.Namespace) -> int:
    from chestxai.config import load_config
    from chestxai.train.data_setup import cache_plan
    from chestxai.train.loop import train

    config = load_config(args.config, list(args.set), values=values_from_args(args))
    print(cache_plan(config.data))  # before any decoding: which cache, or where train looks for one
    run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    print(f"trained in {config.train.precision} on the cache {config.data.cache_dir}")
    print(f"run directory: {run_dir}")
    return 0

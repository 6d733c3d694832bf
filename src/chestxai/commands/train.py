"""``chestxai train``: train a classifier from a YAML recipe, flags overriding the recipe."""

from __future__ import annotations

import argparse

from chestxai.commands._common import add_common_flags

# flag -> config key; a flag left unset keeps the recipe's value. Values go to the config as the
# Python objects argparse made (text stays text: ``--name 007`` is "007", ``--root "a #2"`` keeps
# its "#2"); only ``--set`` text is parsed, by the declared type of its key.
FLAG_KEYS = {
    "name": "name",
    "run_dir": "run_dir",
    "tracking_uri": "tracking_uri",
    "source": "data.source",
    "root": "data.root",
    "size": "data.size",
    "cache": "data.cache",
    "model": "model.name",
    "head": "model.head",
    "weights": "model.weights",
    "pretrained": "model.pretrained",
    "published_head": "model.published_head",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "device": "train.device",
    "amp": "train.amp",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier (YAML recipe + flags)",
        description="Train a chest X-ray classifier. The recipe (configs/*.yaml) sets data, model and "
        "training options; flags and --set override it; the resolved config is saved in the run directory "
        "(runs/<name>/ by default). Multi-GPU: torchrun --nproc_per_node=N -m chestxai train ...",
    )
    p.add_argument("--config", help="YAML recipe, e.g. configs/pneumoniamnist_resnet18.yaml")
    p.add_argument("--name", type=run_name, help="run name: one folder name (run directory runs/<name>)")
    p.add_argument("--run-dir", help="explicit run directory (overrides runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
    p.add_argument("--source", help="dataset reader (chestxai data summary --help lists them)")
    p.add_argument("--root", help="dataset folder")
    p.add_argument("--size", type=int, help="cached image size in pixels")
    p.add_argument("--cache", help="root folder for prepared caches")
    p.add_argument("--model", help="architecture (see `chestxai models`)")
    p.add_argument("--head", help="classification head: pooled (default) or pcam; any registered head")
    p.add_argument(
        "--weights",
        help="pretrained weights: a local timm/torchvision state dict (.pth/.bin/.safetensors), or "
        "torchxrayvision chest X-ray weights as xrv:densenet121-res224-all, xrv:resnet50-res512-all or xrv:PATH",
    )
    p.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ImageNet weights: the local hub/torch cache, else downloaded when online "
        "(HF_HUB_OFFLINE=1 or CHESTXAI_OFFLINE=1: never downloaded)",
    )
    p.add_argument(
        "--published-head",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --weights xrv:...: start from torchxrayvision's own classifier for the dataset's findings "
        "(matched by name) instead of a new head; with --epochs 0 the published model as it is",
    )
    p.add_argument(
        "--epochs", type=int, help="training epochs (0 = no training: score and save the initial model)"
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: local store beside the runs)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any recipe key, e.g. --set train.label_smoothing=0.1 (repeatable)",
    )
    add_common_flags(p, seed=True, device_default=None, seed_default=None, seed_help="training seed")
    p.set_defaults(func=run)


def run_name(text: str) -> str:
    """argparse type for ``--name``: one folder name, so the run lands in runs/<name>/."""
    from chestxai.checks import check_run_name

    try:
        return check_run_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def values_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Dotted config key -> the flag's value, for the flags given (None = not given)."""
    return {key: getattr(args, flag, None) for flag, key in FLAG_KEYS.items()}


def run(args: argparse.Namespace) -> int:
    from chestxai.config import load_config
    from chestxai.train.loop import train

    config = load_config(args.config, list(args.set), values=values_from_args(args))
    run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    print(f"run directory: {run_dir}")
    return 0

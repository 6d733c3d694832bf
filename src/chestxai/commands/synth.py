"""``chestxai synth``: CycleGAN translation between two label domains (train, generate, evaluate)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chestxai.commands._common import add_common_flags
from chestxai.commands._options import HELP as OPTION_HELP
from chestxai.commands._synth_outputs import register_evaluate, register_generate

TRAIN_EPILOG = """\
examples:
  # PneumoniaMNIST normal <-> pneumonia, 64 px (upsampled from 28), small networks for a CPU
  chestxai synth train --source medmnist --root ../shared/data/pneumoniamnist --size 64 \\
      --domain-a not:Pneumonia --domain-b Pneumonia --name pm64 --epochs 10 --max-steps 100 \\
      --batch-size 8 --ngf 32 --ndf 32

  # NIH, the paper's configuration at 256 px (9 residual blocks, 64 filters, batch 1, 200 epochs)
  chestxai synth train --source nih --root /data/ChestX-ray14 --size 256 \\
      --domain-a "No Finding" --domain-b Pneumothorax --name nih-ptx

  # domain B from a second dataset (prepared at the same size)
  chestxai synth train --source nih --root /data/nih --size 256 --domain-a "No Finding" \\
      --source-b siim --root-b /data/siim --domain-b Pneumothorax --name nih-siim

  chestxai synth train --name pm64 --resume          # continue after the last complete epoch

Domains: LABEL (label present, or the class of a multi-class source), not:LABEL (known absent),
"No Finding" (every label known negative). Images with an unknown label join neither domain.
Images are never flipped: a mirrored chest puts the heart on the wrong side. The run directory
(runs/<name>/) holds config.yaml, splits.csv, checkpoint.pt (both generators), last.pt (resume),
history.csv (g_adv, cycle, identity, d per epoch) and samples/epoch-NNN.png.
"""

# flag dest -> SynthSettings field; None = not given (keeps the default, or the run's on --resume)
FLAG_FIELDS = {
    "name": "name",
    "run_dir": "run_dir",
    "source": "source",
    "root": "root",
    "size": "size",
    "cache": "cache",
    "cache_dir": "cache_dir",
    "source_b": "source_b",
    "root_b": "root_b",
    "cache_dir_b": "cache_dir_b",
    "domain_a": "domain_a",
    "domain_b": "domain_b",
    "epochs": "epochs",
    "decay_epochs": "decay_epochs",
    "max_steps": "max_steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "ngf": "ngf",
    "ndf": "ndf",
    "blocks": "n_blocks",
    "pool_size": "pool_size",
    "lambda_cycle": "lambda_cycle",
    "lambda_identity": "lambda_identity",
    "amp": "amp",
    "threads": "threads",
    "samples": "samples",
    "seed": "seed",
    "device": "device",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="CycleGAN synthesis: translate X-rays between two label domains",
        description="Train a CycleGAN (Zhu et al. 2017) between two domains of prepared chest X-rays, "
        "generate translated images, and measure their realism and usefulness.",
    )
    inner = p.add_subparsers(dest="synth_command", metavar="<subcommand>")
    _register_train(inner)
    register_generate(inner)
    register_evaluate(inner)
    p.set_defaults(func=lambda args: _no_subcommand(p))


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _register_train(inner: argparse._SubParsersAction) -> None:
    from chestxai.commands.train import run_name

    p = inner.add_parser(
        "train",
        help="train a CycleGAN between two label domains",
        description="Train a CycleGAN as published (ResNet generators, 70x70 PatchGAN discriminators, LSGAN, "
        "cycle weight 10, identity 0.5 x cycle, pool of 50, Adam 2e-4 / 0.5, constant then linear decay). "
        "Data goes through the same prepare path and splits as `chestxai train`; domains come from the "
        "train split. Resumable, seeded, AMP on CUDA.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--source", help="dataset reader (medmnist, nih, folder, csv, chexpert, siim, ...)")
    data.add_argument("--root", help="dataset folder (or file)")
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=OPTION_HELP)
    data.add_argument("--size", type=int, help="image side in px: a multiple of 4, >= 32 (default 256)")
    data.add_argument("--cache", help="root folder of prepared caches (default $CHESTXAI_CACHE/prepared)")
    data.add_argument("--cache-dir", help="use this prepared cache as it is (instead of --source/--root)")
    data.add_argument("--domain-a", help="domain A: LABEL, not:LABEL or 'No Finding'")
    data.add_argument("--domain-b", help="domain B: LABEL, not:LABEL or 'No Finding'")
    data.add_argument("--source-b", help="take domain B from this second dataset (same --size)")
    data.add_argument("--root-b", help="folder of the second dataset")
    data.add_argument(
        "--option-b", action="append", default=[], metavar="KEY=VALUE", help="reader option of --source-b"
    )
    data.add_argument("--cache-dir-b", help="a prepared cache for domain B (instead of --source-b/--root-b)")
    net = p.add_argument_group("networks and losses")
    net.add_argument("--ngf", type=int, help="generator filters (default 64, the paper's)")
    net.add_argument("--ndf", type=int, help="discriminator filters (default 64)")
    net.add_argument("--blocks", type=int, help="residual blocks (default: 9 from 256 px, else 6)")
    net.add_argument("--pool-size", type=int, help="past fakes the discriminators see (default 50)")
    net.add_argument("--lambda-cycle", type=float, help="cycle-consistency weight (default 10)")
    net.add_argument(
        "--lambda-identity", type=float, help="identity weight, times the cycle weight (default 0.5)"
    )
    opt = p.add_argument_group("training")
    opt.add_argument("--name", type=run_name, help="run name (run directory runs/<name>)")
    opt.add_argument("--run-dir", help="explicit run directory (overrides runs/<name>)")
    opt.add_argument("--epochs", type=int, help="epochs (default 200)")
    opt.add_argument(
        "--decay-epochs", type=int, help="last epochs of linear lr decay (default half of --epochs)"
    )
    opt.add_argument("--max-steps", type=int, help="cap on steps per epoch (default: max(|A|, |B|) / batch)")
    opt.add_argument("--batch-size", type=int, help="images per domain per step (default 1, the paper's)")
    opt.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4)")
    opt.add_argument("--amp", choices=("auto", "on", "off"), help="mixed precision (auto: on CUDA only)")
    opt.add_argument("--threads", type=int, help="torch CPU threads (default torch's)")
    opt.add_argument("--samples", type=int, help="images per domain in each epoch's sample grid (default 4)")
    opt.add_argument("--resume", action="store_true", help="continue the run after its last complete epoch")
    opt.add_argument(
        "--force", action="store_true", help="train into a non-empty folder, or start a run over"
    )
    add_common_flags(p, seed=True, device_default=None, seed_default=None, seed_help="seed")
    p.set_defaults(func=run_train)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The run's settings: its ``config.yaml`` on --resume (when there is one), flags over it."""
    from chestxai.commands._options import reader_options
    from chestxai.rundir import SynthRunDir
    from chestxai.synth.settings import SynthSettings
    from chestxai.yamlsafe import load_yaml_file

    given = {
        f: getattr(args, dest) for dest, f in FLAG_FIELDS.items() if getattr(args, dest, None) is not None
    }
    if "name" not in given and "run_dir" not in given:
        raise ValueError("give --name NAME (the run goes to runs/NAME) or --run-dir PATH")
    base: dict[str, Any] = {}
    if args.resume:
        where = Path(given["run_dir"]) if given.get("run_dir") else Path("runs") / given["name"]
        config = SynthRunDir(where).config
        if config.is_file():  # the run's own settings; the flags given now override them
            base = load_yaml_file(config) or {}
            if not isinstance(base, dict):
                raise ValueError(f"{config} is not a synthesis config")
    raw = {**{k: v for k, v in base.items() if k not in ("kind", "environment")}, **given}
    if "name" in given and "run_dir" not in given:
        raw["run_dir"] = ""  # --name means runs/<name>, not a folder recorded before
    if args.option:
        raw["options"] = reader_options(raw.get("source", "medmnist"), args.option)
    if args.option_b:
        raw["options_b"] = reader_options(raw.get("source_b") or raw.get("source", "medmnist"), args.option_b)
    return SynthSettings.from_dict(raw, "command line")


def run_train(args: argparse.Namespace) -> int:
    from chestxai.synth.loop import train_synth

    settings = settings_from_args(args)
    run_dir = train_synth(settings, resume=args.resume, progress=not args.no_progress, force=args.force)
    print(f"run directory: {run_dir}")
    return 0

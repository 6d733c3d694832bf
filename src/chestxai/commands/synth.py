"""``chestxai synth``: CycleGAN translation between two label domains (train, generate, evaluate)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chestxai.commands._common import add_common_flags
from chestxai.commands._flags import add_setting_flags, setting_values
from chestxai.commands._options import HELP as OPTION_HELP
from chestxai.commands._synth_outputs import register_evaluate, register_generate
from chestxai.synth.settings import DATA, TRAINING, SynthSettings

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
    data = p.add_argument_group(DATA)
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=OPTION_HELP)
    data.add_argument(
        "--option-b", action="append", default=[], metavar="KEY=VALUE", help="reader option of --source-b"
    )
    opt = p.add_argument_group(TRAINING)
    opt.add_argument("--resume", action=argparse.BooleanOptionalAction, default=False,
                     help="continue the run after its last complete epoch")  # fmt: skip
    opt.add_argument("--force", action=argparse.BooleanOptionalAction, default=False,
                     help="train into a non-empty folder, or start a run over")  # fmt: skip
    # one flag per SynthSettings field declared with a flag: help, range and type from the field
    add_setting_flags(p, SynthSettings, groups={DATA: data, TRAINING: opt})
    add_common_flags(p, device=False)  # --device and --seed are SynthSettings fields above
    p.set_defaults(func=run_train)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The run's settings: its ``config.yaml`` on --resume (when there is one), flags over it."""
    from chestxai.commands._options import reader_options
    from chestxai.rundir import SynthRunDir
    from chestxai.yamlsafe import load_yaml_file

    given = setting_values(args, SynthSettings)  # None = not given: the default, or the run's on --resume
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

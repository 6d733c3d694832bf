"""``chestxai synth generate`` and ``chestxai synth evaluate`` (registered by ``commands/synth.py``).

Kept apart from the training command so that each file stays one concept: these two read a
finished synthesis run; ``evaluate`` computes (``chestxai.synth.realism``) and then renders
(``chestxai.report.synth``), the one place both layers meet.
"""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import NoSwitch, add_common_flags

DIRECTIONS = ("a2b", "b2a")  # chestxai.synth.checkpoint.DIRECTIONS (spelt here: the CLI starts without torch)

GENERATE_EPILOG = """\
examples:
  chestxai synth generate runs/pm64 --direction b2a --n 200 --out synthetic/pm64-normal
  chestxai synth generate runs/pm64 --direction a2b --split train --n 500 --out aug/ --seed 1
  chestxai data summary --source csv --root synthetic/pm64-normal     # loads without options
  chestxai prepare --source csv --root synthetic/pm64-normal --size 64 --out cache/

a2b translates domain A images into domain B (the run's --domain-a/--domain-b). Writes
OUT/images/<direction>-<source id>.png and OUT/manifest.csv: path, label (the target domain's
text, the csv reader's default label column), the target's 0/1 label columns (for
--option label_cols=...), source_image, source_patient, source_split, direction, seed, run, epoch.
The N source images are a seeded draw from the split (default test). Use --split train for
training data, so that no test image (nor its patient) leaks into training through a translation.
A non-empty OUT is refused without --force, and files an earlier generate did not write are never
replaced.
"""

EVALUATE_EPILOG = """\
examples:
  chestxai synth evaluate runs/pm64                                   # two-sample test, cycle SSIM, gallery
  chestxai synth evaluate runs/pm64 --classifier runs/quickstart      # + FID/KID, label consistency, Grad-CAM
  chestxai synth evaluate runs/pm64 --classifier runs/cls --n 500 --split val
  chestxai synth evaluate runs/pm64 --extractor inception-torchvision:~/weights/inception_v3_google.pth

Writes RUN/synth_metrics.json and RUN/report.html (and RUN/gallery/). Per direction: two_sample
(held-out accuracy of a small real-vs-synthetic CNN, exact binomial 95% CI, one-sided p-value vs
0.5: 0.5 = this test cannot tell them apart), fid and kid (torchmetrics, on the named extractor:
the classifier's pooled features by default; not comparable with published Inception FIDs),
label_consistency (share of translations the classifier puts in the target domain at its
thresholds.json thresholds, beside real target images and the untranslated inputs), cycle_ssim
(input vs a->b->a reconstruction). Without --classifier the metrics that need one are null and
the JSON says why.
"""


def _positive(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 1, got {value}")
        return value

    return parse


def register_generate(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="translate N images of a split and write PNGs + a manifest the csv reader loads",
        description="Translate N source-domain images of one split with a trained synthesis run and write "
        "them as PNGs with OUT/manifest.csv (loadable by `--source csv` without options).",
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="synthesis run directory (chestxai synth train)")
    p.add_argument("--direction", required=True, help="a2b (domain A -> B) or b2a")
    p.add_argument("--n", type=_positive("--n"), required=True, help="images to translate")
    p.add_argument("--out", required=True, help="output folder (new or empty; --force to write into one)")
    p.add_argument("--split", default="test", help="split the source images come from (default test)")
    p.add_argument("--batch-size", type=_positive("--batch-size"), default=16, help="images per batch (16)")
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write into a non-empty --out (own files only)",
    )
    add_common_flags(p, seed=True, seed_help="seed of the choice of source images")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from chestxai.devices import pick_device
    from chestxai.synth.generate import generate

    g = generate(
        args.run,
        args.direction,
        args.out,
        args.n,
        split=args.split,
        seed=args.seed,
        batch_size=args.batch_size,
        force=args.force,
        device=str(pick_device(args.device)),
        progress=not args.no_progress,
    )
    print(f"wrote {g.n} images ({g.source_domain} -> {g.target_domain}) and {g.out.manifest}")
    return 0


def register_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="realism and faithfulness of a synthesis run -> RUN/synth_metrics.json + RUN/report.html",
        description="Measure a synthesis run on a held-out split: classifier two-sample test, FID/KID with a "
        "named extractor, label consistency, cycle SSIM, Grad-CAM difference maps; then write the report.",
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="synthesis run directory (chestxai synth train)")
    p.add_argument("--classifier", help="a classifier run trained on real images (chestxai train)")
    p.add_argument(
        "--extractor",
        help="FID/KID features: classifier (default with --classifier) or inception-torchvision:FILE",
    )
    p.add_argument(
        "--n", type=_positive("--n"), default=200, help="images per set and direction (default 200)"
    )
    p.add_argument("--split", default="test", help="split to measure on (default test)")
    p.add_argument(
        "--direction",
        choices=DIRECTIONS,
        action="append",
        help="only this direction (repeatable; default both)",
    )
    p.add_argument("--gallery", type=int, default=4, help="gallery images per direction (default 4)")
    p.add_argument("--c2st-epochs", type=_positive("--c2st-epochs"), default=15,
                   help="epochs of the two-sample CNN (default 15)")  # fmt: skip
    p.add_argument("--batch-size", type=_positive("--batch-size"), default=16, help="images per batch (16)")
    p.add_argument(
        "--report",
        dest="no_report",
        action=NoSwitch,
        help="write the report (--no-report: synth_metrics.json only)",
    )
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="replace files this command did not write",
    )
    add_common_flags(p, seed=True, seed_help="seed of the image draws and the two-sample CNN")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from chestxai.devices import pick_device
    from chestxai.metrics.significance import format_p
    from chestxai.report.synth import build_synth_report
    from chestxai.synth.realism import evaluate_synth

    m = evaluate_synth(
        args.run,
        classifier=args.classifier,
        extractor=args.extractor,
        n=args.n,
        split=args.split,
        directions=tuple(args.direction or DIRECTIONS),
        seed=args.seed,
        gallery=args.gallery,
        c2st_epochs=args.c2st_epochs,
        batch_size=args.batch_size,
        device=str(pick_device(args.device)),
        force=args.force,
        progress=not args.no_progress,
    )
    for d, r in m["two_sample"].items():
        fid = (m.get("fid") or {}).get(d)
        lc = (m.get("label_consistency") or {}).get(d)
        print(
            f"{d}: two-sample accuracy {r['accuracy']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] p {format_p(r['p_value'])} "
            f"(n={r['n_test']}); cycle SSIM {m['cycle_ssim'][d]['mean']:.3f}"
            + (f"; FID {fid['value']:.2f}" if fid else "")
            + (f"; label consistency {lc['share']:.3f}" if lc and lc.get("share") is not None else "")
        )
    from chestxai.rundir import SynthRunDir

    print(f"wrote {SynthRunDir(args.run).metrics}")
    if not args.no_report:
        print(f"wrote {build_synth_report(args.run, force=args.force)}")
    return 0

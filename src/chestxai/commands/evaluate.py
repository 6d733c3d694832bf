"""``chestxai evaluate``: metrics with confidence intervals, thresholds, calibration and figures."""

from __future__ import annotations

import argparse
from typing import Any

from chestxai.commands._common import add_common_flags, add_figures_flag, add_n_boot
from chestxai.commands._sharded import add_dist_timeout, run_sharded
from chestxai.commands._site import add_site_flags, run_site_only, site_step, write_site
from chestxai.rundir import RunDir

EPILOG = """\
examples:
  chestxai evaluate runs/resnet18
  chestxai evaluate runs/resnet18 --threshold-policy sensitivity:0.95
  chestxai evaluate runs/resnet18 --split val
  chestxai evaluate runs/resnet18 --calibrated
  chestxai evaluate runs/nih-d121 --by sex,age,view --age-bins 40,60
  chestxai evaluate runs/resnet18 --data cache/other-224px-ab12cd34ef --out results/external
  chestxai evaluate runs/nih --data cache/covid-collection-64px-55486069b0 --out results/covid --site-probe
  chestxai evaluate runs/nih --site-probe --probe view
  torchrun --standalone --nproc_per_node 4 -m chestxai evaluate runs/nih-d121

Predicts the validation and the evaluated split, chooses operating thresholds on validation
(written to RUN/thresholds.json, with the policy and the checkpoint epoch; the checkpoint is never
rewritten), fits a calibration temperature on validation, and writes RUN/predictions.csv,
RUN/metrics.json and RUN/figures/ for the test split; any other split gets its own
predictions-SPLIT.csv, metrics-SPLIT.json and figures-SPLIT/. --data scores another cache into
--out DIR and leaves the run's own files alone, with `site_shift` in its metrics.json: internal
(the run's test split) vs external AUROC per finding the two label sets share by name (NIH's
Effusion is CheXpert's Pleural Effusion; the COVID collection's pathogens are kinds of Pneumonia),
with CIs and DeLong's unpaired p; when the labels differ, only those findings are scored.
--site-probe fits a linear probe on the model's pooled features that predicts the dataset
(internal vs --data) or, with --probe view, the view; an AUROC >= 0.9 warns that the model
encodes the site (`site_probe`). Confidence intervals resample patients
(clustered bootstrap) when the cache has patient ids. A run that is still training is refused.
Under torchrun each rank predicts a block of whole batches (its own GPU with --device auto), rank 0
gathers them and alone writes the same files as one process; a rank that dies or does not arrive
within --dist-timeout seconds fails the job instead of hanging it.
--by adds per-group metrics (AUROC, sensitivity, FPR, ECE, underdiagnosis, patient-bootstrap CIs,
the largest gap between groups) under "subgroups" in metrics.json; groups with fewer than
--min-positives positives or negatives are listed as too few, never scored; unknown values are
never a group (docs/SUBGROUPS.md).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a trained run: metrics with CIs, thresholds, calibration, figures",
        description="Evaluate RUN on a split of its prepared cache (or of --data).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run", metavar="RUN", help="run directory holding checkpoint.pt (or an ensemble's ensemble.json)"
    )
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument(
        "--data", default=None, help="prepared cache to evaluate on (default: the run's training cache)"
    )
    p.add_argument(
        "--threshold-policy",
        default="youden",
        help="youden, a fixed number such as 0.5, sensitivity:0.95 or specificity:0.95 (default youden)",
    )
    add_n_boot(p, "bootstrap replicates for the CIs")
    p.add_argument("--batch-size", type=int, default=256, help="inference batch size (default 256)")
    add_common_flags(p, seed=True, seed_help="bootstrap seed")
    add_figures_flag(p)
    p.add_argument(
        "--out", default=None, help="folder for the outputs (needed with --data OTHER; new or empty)"
    )
    p.add_argument(
        "--calibrated",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="scale probabilities by the temperature fitted on val before thresholds and metrics",
    )
    p.add_argument(
        "--keep-thresholds",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="do not write the chosen thresholds to RUN/thresholds.json",
    )
    p.add_argument(
        "--force",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="evaluate a run that is still training; write into a non-empty --out",
    )
    add_site_flags(p)
    add_dist_timeout(p)
    _add_subgroup_flags(p)
    p.set_defaults(func=run)


def _by_columns(text: str) -> list[str]:
    from chestxai.evaluation.subgroups import parse_by  # numpy: only when the flag is given

    return parse_by(text)


def _age_edges(text: str) -> tuple[float, ...]:
    from chestxai.evaluation.subgroups import parse_age_bins

    return parse_age_bins(text)


def _add_subgroup_flags(p: argparse.ArgumentParser) -> None:
    """``--by``, ``--age-bins``, ``--min-positives``; the defaults live in
    :mod:`chestxai.metrics.subgroups` (``None`` here: building the parser imports no numpy)."""
    from chestxai.commands._flags import usage_type

    p.add_argument(
        "--by",
        type=usage_type(_by_columns),
        default=None,
        help="subgroup metrics by these cache columns, e.g. sex,age,view (also site or any metadata column; "
        "sex:age for the intersection)",
    )
    p.add_argument(
        "--age-bins",
        type=usage_type(_age_edges),
        default=None,
        help="age bin edges in years for --by age (default 20,40,60,80: 0-20, 20-40, 40-60, 60-80, 80+)",
    )
    p.add_argument(
        "--min-positives",
        type=int,
        default=None,
        help="score a group only with at least this many positives and negatives (default 10)",
    )


def run(args: argparse.Namespace) -> int:
    from chestxai.metrics.threshold_policy import parse_policy

    parse_policy(args.threshold_policy)  # fail on a bad flag before loading anything
    if args.min_positives is not None and args.min_positives < 1:
        raise ValueError(f"--min-positives {args.min_positives}: give a count of at least 1 (default 10)")
    return run_sharded(args, "evaluate", lambda info, device: _run(args, info, device))


def _subgroup_settings(args: argparse.Namespace) -> dict | None:
    """Keyword arguments of ``subgroups_entry`` from the flags (``None`` without ``--by``)."""
    if not args.by:
        return None
    from chestxai.metrics.subgroups import AGE_EDGES, MIN_COUNT

    return {
        "by": args.by,
        "age_edges": AGE_EDGES if args.age_bins is None else args.age_bins,
        "min_count": MIN_COUNT if args.min_positives is None else args.min_positives,
    }


def _run(args: argparse.Namespace, info, device: str) -> int:
    from chestxai.evaluation.evaluate import evaluate_run

    site = site_step(args, info, device)  # --data OTHER / --site-probe (commands/_site.py)
    if site is not None and not site["full"]:
        return run_site_only(args, site)
    shards = None
    if info is not None:
        from chestxai.evaluation.sharded_inference import Shards
        from chestxai.train.distributed import gather_to_main

        timeout = args.dist_timeout
        shards = Shards(
            info.rank, info.world_size, lambda obj: gather_to_main(obj, info, timeout, "evaluate")
        )

    result = evaluate_run(
        args.run,
        split=args.split,
        data=args.data,
        threshold_policy=args.threshold_policy,
        out=args.out,
        calibrated=args.calibrated,
        force=args.force,
        n_boot=args.n_boot,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
        figures=not args.no_figures,
        store_thresholds=not args.keep_thresholds,
        progress=not args.no_progress and (shards is None or shards.is_main),
        shards=shards,
        subgroups=_subgroup_settings(args),
    )
    if result is None:  # a rank other than 0: rank 0 reports
        return 0
    m = result["metrics"]
    patients = (
        f", {result['n_patients']} patients"
        if result["bootstrap"]["unit"] == "patient"
        else " (no patient ids)"
    )
    lines = [f"{result['split']}: {result['n_images']} images{patients}"]
    small = result.get("small_n", {}).get("classes") or {}
    if small:
        lines.append(f"  small samples (< {result['small_n']['min_count']} positives or negatives; CIs rough): "
                     + ", ".join(f"{k} {v['n_pos']}+/{v['n_neg']}-" for k, v in small.items()))  # fmt: skip
    for key in ("roc_auc", "average_precision", "f1", "recall", "specificity"):
        v = m["macro"][key]
        if v["value"] is not None:
            lo, hi = v["ci"]
            ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None else ""
            lines.append(f"  macro {key:<18} {v['value']:.3f}{ci}")
    if result.get("subgroups"):
        from chestxai.evaluation.subgroups import summary_lines

        lines += summary_lines(result["subgroups"])
    if result.get("checkpoint_epoch") is not None:
        lines.append(f"  scored checkpoint epoch {result['checkpoint_epoch']}")
    dest = RunDir(args.out or result["run"])
    written = [dest.metrics_for(result["split"]), dest.predictions_for(result["split"])]
    stored = result["thresholds"].get("stored_in")
    lines.append("wrote " + ", ".join(str(p) for p in written + ([stored] if stored else [])))
    if site is not None:
        lines.append(write_site(args, site, dest.metrics_for(result["split"]), None))
    print("\n".join(lines))
    return 0

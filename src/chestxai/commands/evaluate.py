"""``chestxai evaluate``: metrics with confidence intervals, thresholds, calibration and figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chestxai.commands._common import add_common_flags, add_figures_flag, add_n_boot
from chestxai.commands._sharded import add_dist_timeout, run_sharded
from chestxai.rundir import RunDir

EPILOG = """\
examples:
  chestxai evaluate runs/resnet18
  chestxai evaluate runs/resnet18 --threshold-policy sensitivity:0.95
  chestxai evaluate runs/resnet18 --split val
  chestxai evaluate runs/resnet18 --calibrated
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
    p.add_argument(
        "--site-probe",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="probe the model's pooled features for the site (writes site_probe to metrics.json)",
    )
    p.add_argument(
        "--probe",
        choices=("dataset", "view"),
        default=None,
        help="what the site probe predicts: dataset (internal vs --data; default) or view (PA vs AP); "
        "implies --site-probe",
    )
    p.add_argument(
        "--probe-folds", type=int, default=5, help="patient-grouped folds of the site probe (default 5)"
    )
    add_dist_timeout(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chestxai.metrics.threshold_policy import parse_policy

    parse_policy(args.threshold_policy)  # fail on a bad flag before loading anything
    return run_sharded(args, "evaluate", lambda info, device: _run(args, info, device))


def _run(args: argparse.Namespace, info, device: str) -> int:
    from chestxai.evaluation.evaluate import evaluate_run

    if args.probe is not None:  # naming what to probe asks for the probe
        args.site_probe = True
    args.probe = args.probe or "dataset"

    site = _site_step(args, info, device)
    if site is not None and not site["full"]:
        return _run_site_only(args, site)
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
    if result.get("checkpoint_epoch") is not None:
        lines.append(f"  scored checkpoint epoch {result['checkpoint_epoch']}")
    dest = RunDir(args.out or result["run"])
    written = [dest.metrics_for(result["split"]), dest.predictions_for(result["split"])]
    stored = result["thresholds"].get("stored_in")
    lines.append("wrote " + ", ".join(str(p) for p in written + ([stored] if stored else [])))
    if site is not None:
        lines.append(_write_site(args, site, dest.metrics_for(result["split"]), None))
    print("\n".join(lines))
    return 0


# --- site shift and site probe (evaluation/site_shift.py, evaluation/site_probe.py) ----------------
def _site_step(args: argparse.Namespace, info, device: str) -> dict | None:
    """What the site part of this evaluation does: None (no --data other cache, no --site-probe),
    else the opened run and whether the full evaluation runs too (the labels match)."""
    if args.data is None and not args.site_probe:
        return None
    if args.site_probe and args.probe == "dataset" and args.data is None:
        raise ValueError(
            "--site-probe --probe dataset compares the run's cache with another: pass --data OTHER_CACHE"
        )
    from chestxai.models.trained_run import TrainedRun
    from chestxai.rundir.guard import check_not_training

    run = RunDir(args.run)
    run.require_dir()
    check_not_training(run, args.force, "evaluate it")
    trained = TrainedRun.open(run, device)
    if args.data is not None and trained.inputs(None).cache.path.resolve() == Path(args.data).resolve():
        return (
            None
            if not args.site_probe or args.probe == "dataset"
            else {"trained": trained, "full": True, "data": None}
        )
    if args.data is None:
        return {"trained": trained, "full": True, "data": None}
    from chestxai.evaluation.site_shift import labels_match

    full = labels_match(trained, args.data)
    if info is not None and (args.site_probe or not full):
        raise ValueError(
            "the site shift and site probe run in one process: run this evaluate without torchrun"
        )
    if info is not None:
        return None
    return {"trained": trained, "full": full, "data": args.data}


def _write_site(args: argparse.Namespace, site: dict, metrics_path, header: dict | None) -> str:
    from chestxai.evaluation.site_shift import format_table, site_entries, write_site_entries

    entries = site_entries(
        site["trained"],
        site["data"],
        args.split,
        probe=args.probe if args.site_probe else None,
        folds=args.probe_folds,
        n_boot=args.n_boot,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    write_site_entries(metrics_path, entries, header)
    lines = [format_table(entries["site_shift"])] if "site_shift" in entries else []
    probe = entries.get("site_probe")
    if probe is not None:
        auc = probe["roc_auc"]
        lines.append(
            f"site probe ({probe['probe']}: {' vs '.join(probe['classes'])}): AUROC {auc['value']:.3f} "
            f"[{auc['ci'][0]:.3f}, {auc['ci'][1]:.3f}], {probe['folds']} patient-grouped folds, n {probe['n']}"
        )
        if probe["warning"]:
            lines.append(f"  WARNING: {probe['warning']}")
    lines.append(f"wrote {', '.join(entries)} into {metrics_path}")
    return "\n".join(lines)


def _run_site_only(args: argparse.Namespace, site: dict) -> int:
    """The --data cache has other labels: score only the findings that meet by name."""
    from chestxai.rundir.guard import check_output_dir

    if args.out is None:
        raise ValueError(
            f"--data {args.data} is not the cache {args.run} was trained on: pass --out DIR for its metrics, "
            f"so the run's own results stay its own"
        )
    dest = RunDir(check_output_dir(args.out, args.force))
    dest.root.mkdir(parents=True, exist_ok=True)
    trained = site["trained"]
    header = {
        "run": str(trained.run.root),
        "split": args.split,
        "cache": str(Path(args.data)),
        "model": trained.description,
        "checkpoint": str(trained.checkpoint) if trained.checkpoint is not None else None,
        "checkpoint_epoch": trained.epoch,
        "label_names": list(trained.label_names),
        "scored": "site_shift only: the cache's labels are not the run's, so only the findings that meet by name",
    }
    print(_write_site(args, site, dest.metrics_for(args.split), header))
    return 0

"""The site part of ``chestxai evaluate``: ``site_shift`` for ``--data OTHER`` and the site probe
(``--site-probe``, ``--probe dataset|view``), beside the full evaluation when the other cache has
the run's labels, alone when only some findings meet by name (evaluation/site_shift.py,
evaluation/site_probe.py; keys in docs/SITE_SHIFT.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from chestxai.rundir import RunDir


def add_site_flags(p) -> None:
    """``--site-probe``, ``--probe``, ``--probe-folds``."""
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


def site_step(args: argparse.Namespace, info, device: str) -> dict | None:
    """What the site part of this evaluation does: None (no --data other cache, no --site-probe),
    else the opened run and whether the full evaluation runs too (the labels match)."""
    if args.probe is not None:  # naming what to probe asks for the probe
        args.site_probe = True
    args.probe = args.probe or "dataset"
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
        if args.site_probe and args.probe == "dataset":
            raise ValueError(
                f"--probe dataset: --data {args.data} is the run's own cache; pass another cache"
            )
        return {"trained": trained, "full": True, "data": None} if args.site_probe else None
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


def write_site(args: argparse.Namespace, site: dict, metrics_path, header: dict | None) -> str:
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


def run_site_only(args: argparse.Namespace, site: dict) -> int:
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
    print(write_site(args, site, dest.metrics_for(args.split), header))
    return 0

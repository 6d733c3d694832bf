"""``chestxai ensemble``: a new run directory that averages evaluated runs.

The members' predictions (same cache, same splits, same images) are combined with weights fitted
on their validation rows (:mod:`chestxai.metrics.ensemble_weights`), and the result is written as a
complete run directory: ``ensemble.json`` (members, weights), ``config.yaml``, ``splits.csv``
(the members' common split), ``predictions.csv``, ``metrics.json``, ``thresholds.json`` and
``figures/``, through the same writers ``evaluate`` uses. ``compare``, ``report`` and
``evaluate`` (which predicts with the members) read it like any run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chestxai.atomic import write_text
from chestxai.evaluation.evaluate import evaluate_predictions
from chestxai.evaluation.outputs import SplitScores, write_split_outputs
from chestxai.metrics.ensemble_weights import fit_weights, weighted_average
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import EnsembleManifest, write_ensemble
from chestxai.rundir.guard import check_output_dir
from chestxai.rundir.predictions import Predictions, read_predictions
from chestxai.rundir.tables import read_splits, write_splits

log = logging.getLogger(__name__)


def _member_rows(run: RunDir, split: str) -> Predictions:
    """The member's predictions of ``split`` ('val' also comes with every other split's file)."""
    if split == "val":
        for path in (run.predictions_for("val"), run.predictions):
            if path.exists():
                val = read_predictions(path).select("val")
                if len(val.frame):
                    return val
    path = run.predictions_for(split)
    rows = read_predictions(path).select(split) if path.exists() else None
    if rows is None or not len(rows.frame):
        raise ValueError(
            f"{run.root} has no {split!r} predictions; run `chestxai evaluate {run.root} --split {split}` first"
        )
    return rows


def _common(values: list, what: str, runs: list[RunDir]):
    if any(v != values[0] for v in values[1:]):
        detail = ", ".join(f"{r.root}: {v}" for r, v in zip(runs, values, strict=True))
        raise ValueError(
            f"ensemble members differ in {what} ({detail}); ensembles need runs on the same data"
        )
    return values[0]


def _copy_splits(runs: list[RunDir], dest: RunDir) -> None:
    """The members' common split (they must agree row for row) becomes the ensemble's."""
    tables = [read_splits(r) for r in runs]
    texts = [t.to_csv(index=False) if t is not None else None for t in tables]
    if _common(texts, f"their split ({runs[0].splits.name})", runs) is not None:
        write_splits(dest, tables[0])


def _check_members_and_out(members: list[RunDir], out: Path) -> None:
    """Each member once (however spelled: ``runs/r1``, ``runs/r1/``, a symlink), and ``--out``
    neither a member nor a folder holding a checkpoint: ``--force`` writes *into* a folder, it
    never turns a trained run into an ensemble."""
    seen: dict[Path, Path] = {}
    for m in members:
        real = m.root.resolve()
        if real in seen:
            raise ValueError(
                f"run {m.root} is given twice (same folder as {seen[real]}); give each member once"
            )
        seen[real] = m.root
    real_out = out.resolve()
    if real_out in seen:
        raise ValueError(f"--out {out} is the member {seen[real_out]}; give a new folder for the ensemble")
    checkpoint = RunDir(out).checkpoint
    if checkpoint.exists():
        raise ValueError(
            f"--out {out} holds a trained model ({checkpoint}); an ensemble never replaces a run, "
            f"even with --force: give a new folder"
        )


def ensemble_runs(
    runs: list[str | Path],
    out: str | Path,
    split: str = "test",
    threshold_policy: str = "youden",
    n_boot: int = 1000,
    *,
    figures: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Fit weights on the members' validation rows, score ``split``, write the ensemble run to ``out``."""
    members = [RunDir(Path(r)) for r in runs]
    _check_members_and_out(members, Path(out))
    dest = RunDir(check_output_dir(out, force))
    from chestxai.models.trained_run import TrainedRun  # torch: only when an ensemble is built

    for m in members:
        if m.is_ensemble:
            raise ValueError(f"{m.root} is itself an ensemble; combine its members directly")
    # the members' checkpoints, read and checked (labels, task, cache) where every ensemble is
    first = TrainedRun.open(members[0], "cpu", [m.root for m in members[1:]]).first
    names, task, cache_dir = list(first.label_names), first.task, first.cache_dir
    parts: dict[str, list[Predictions]] = {}
    for name in ("val", split):
        sel = [_member_rows(m, name) for m in members]
        ids = sel[0].frame["image_id"].to_numpy(str)
        for m, s in zip(members, sel, strict=True):
            if not np.array_equal(s.frame["image_id"].to_numpy(str), ids):
                raise ValueError(
                    f"{m.root} was evaluated on other {name} images than {members[0].root}; ensembles need the "
                    f"same cache and splits"
                )
        parts[name] = sel
    fit = fit_weights([s.probs for s in parts["val"]], parts["val"][0].targets, task)
    combined = {name: weighted_average([s.probs for s in sel], fit.weights) for name, sel in parts.items()}
    scored = {
        name: SplitScores(
            name,
            sel[0].frame["image_id"].to_numpy(str),
            sel[0].frame["patient_id"].to_numpy(str),
            combined[name],
            sel[0].targets,
        )
        for name, sel in parts.items()
    }
    result = evaluate_predictions(
        combined[split], scored[split].targets, task, names,
        val_probs=combined["val"], val_targets=scored["val"].targets,
        patient_ids=scored[split].patient_ids, threshold_policy=threshold_policy, n_boot=n_boot,
    )  # fmt: skip
    manifest = EnsembleManifest(
        [m.root.resolve() for m in members],
        [float(w) for w in fit.weights],
        task,
        names,
        cache_dir,
        {
            "fitted_on": "val",
            "val_log_loss": fit.val_log_loss,
            "member_val_log_loss": fit.member_val_log_loss,
            "split": split,
        },
    )
    dest.root.mkdir(parents=True, exist_ok=True)
    write_ensemble(dest, manifest)
    config = {"kind": "ensemble", **manifest.as_dict(), "data": first.config.get("data") or {}}
    write_text(dest.config, yaml.safe_dump(config, sort_keys=False))
    _copy_splits(members, dest)
    result = {
        "run": str(dest.root),
        "split": split,
        "cache": cache_dir,
        "splits_from": "the members' predictions",
        "model": "ensemble of " + ", ".join(m.root.name for m in members),
        "checkpoint": None,
        "checkpoint_epoch": None,
        "ensemble": {"runs": [str(r) for r in manifest.members], "weights": manifest.weights},
        **result,
    }
    ordered = [scored["val"], scored[split]] if split != "val" else [scored[split]]
    metrics = write_split_outputs(dest, result, ordered, figures=figures, thresholds_for=dest)
    log.info("ensemble of %d runs written to %s", len(members), dest.root)
    return {**manifest.as_dict(), "metrics": metrics}

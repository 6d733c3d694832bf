"""Ensemble of run directories: align their predictions, fit weights on val, score a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.evaluation.jsonio import write_json
from chestxai.evaluation.predictions import predictions_frame, read_predictions, write_predictions
from chestxai.models.ensemble import fit_weights, weighted_average
from chestxai.rundir import RunDir


def ensemble_runs(
    runs: list[Path], out: Path, split: str = "test", threshold_policy: str = "youden", n_boot: int = 1000
) -> dict[str, Any]:
    from chestxai.evaluation import evaluate_predictions

    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new --out (results are never overwritten)")
    preds = [read_predictions(RunDir(r).predictions) for r in runs]
    first = preds[0]
    for r, p in zip(runs[1:], preds[1:], strict=True):
        if p.label_names != first.label_names:
            raise ValueError(f"{r} predicts {p.label_names} but {runs[0]} predicts {first.label_names}")
    parts = {}
    for name in ("val", split):
        sel = [p.select(name) for p in preds]
        ids = sel[0].frame["image_id"].to_numpy(str)
        if not len(ids):
            raise ValueError(f"{runs[0]}/predictions.csv has no {name!r} rows; run `chestxai evaluate` on it")
        for r, s in zip(runs, sel, strict=True):
            if not np.array_equal(s.frame["image_id"].to_numpy(str), ids):
                raise ValueError(
                    f"{r} was evaluated on other {name} images than {runs[0]}; ensembles need the same cache "
                    f"and splits"
                )
        parts[name] = sel
    task = _task(runs[0])
    fit = fit_weights([s.probs for s in parts["val"]], parts["val"][0].targets, task)
    combined = {name: weighted_average([s.probs for s in sel], fit.weights) for name, sel in parts.items()}
    metrics = evaluate_predictions(
        combined[split], parts[split][0].targets, task, first.label_names,
        val_probs=combined["val"], val_targets=parts["val"][0].targets,
        patient_ids=parts[split][0].frame["patient_id"].to_numpy(str),
        threshold_policy=threshold_policy, n_boot=n_boot,
    )  # fmt: skip
    out.mkdir(parents=True)
    frames = [
        predictions_frame(
            sel[0].frame["image_id"],
            sel[0].frame["patient_id"],
            [name] * len(sel[0].frame),
            combined[name],
            sel[0].targets,
            first.label_names,
        )  # fmt: skip
        for name, sel in parts.items()
    ]
    import pandas as pd

    write_predictions(pd.concat(frames, ignore_index=True), out / "predictions.csv")
    summary = {
        "runs": [str(r) for r in runs],
        "weights": [float(w) for w in fit.weights],
        "val_log_loss": fit.val_log_loss,
        "member_val_log_loss": fit.member_val_log_loss,
        "task": task,
        "label_names": first.label_names,
        "split": split,
    }
    (out / "ensemble.json").write_text(json.dumps(summary, indent=2))
    write_json(metrics, out / "metrics.json")
    return {**summary, "metrics": metrics}


def _task(run: Path) -> str:
    from chestxai.models.checkpoint import read_checkpoint

    return str(read_checkpoint(RunDir(run).require_checkpoint())["model"]["task"])

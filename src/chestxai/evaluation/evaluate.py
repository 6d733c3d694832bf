"""``evaluate``: score a trained run on its validation and test images and write
``predictions.csv``, ``metrics.json`` and ``figures/`` into the run directory.

Order matters for honest numbers: thresholds and the calibration temperature are fitted on the
*validation* split and only then applied to the evaluated split. Confidence intervals resample
patients (see :mod:`chestxai.evaluation.bootstrap`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chestxai.evaluation.bootstrap import bootstrap_samples, cluster_codes, intervals
from chestxai.evaluation.calibration import apply_temperature, calibration_summary, fit_temperature
from chestxai.evaluation.jsonio import to_jsonable, write_json
from chestxai.evaluation.metrics import classification_metrics
from chestxai.evaluation.predictions import predictions_frame, write_predictions
from chestxai.evaluation.tasks import check_arrays, uses_thresholds
from chestxai.evaluation.thresholds import choose_thresholds, parse_policy
from chestxai.rundir import RunDir

log = logging.getLogger(__name__)


def _with_intervals(point: dict, ci: dict) -> dict:
    """Merge point estimates and intervals: every metric becomes ``{"value": v, "ci": [lo, hi]}``."""
    out = {}
    for k, v in point.items():
        if isinstance(v, dict):
            out[k] = _with_intervals(v, ci.get(k, {}))
        elif k in ci:
            out[k] = {"value": v, "ci": list(ci[k])}
        else:
            out[k] = v  # counts and thresholds carry no interval
    return out


def evaluate_predictions(
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    *,
    val_probs: np.ndarray | None = None,
    val_targets: np.ndarray | None = None,
    patient_ids: np.ndarray | list | None = None,
    threshold_policy: str = "youden",
    default_thresholds: dict[str, float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds about one split, from arrays alone (no files, no model).

    Thresholds follow ``threshold_policy`` on the validation arrays when given, else
    ``default_thresholds`` (e.g. those stored in the checkpoint), else 0.5. Multi-class decisions
    are the argmax and use no thresholds.
    """
    probs, targets = check_arrays(probs, targets, task)
    policy = parse_policy(threshold_policy)
    have_val = val_probs is not None and val_targets is not None and len(val_probs) > 0
    if not uses_thresholds(task):
        thresholds, chosen_on = None, "argmax (multi-class)"
    elif policy.kind == "fixed":
        thresholds, chosen_on = {n: float(policy.value) for n in label_names}, "fixed"
    elif have_val:
        thresholds, chosen_on = choose_thresholds(val_probs, val_targets, task, label_names, policy), "val"
    else:
        thresholds = {n: float((default_thresholds or {}).get(n, 0.5)) for n in label_names}
        chosen_on = "checkpoint" if default_thresholds else "default 0.5"
        log.warning("no validation images to choose %s thresholds on; using %s thresholds", policy, chosen_on)
    th = np.array([thresholds[n] for n in label_names]) if thresholds else None

    t0 = time.perf_counter()
    point = classification_metrics(probs, targets, task, label_names, th)
    samples = bootstrap_samples(probs, targets, task, label_names, th, patient_ids, n_boot=n_boot, seed=seed)
    metrics = _with_intervals(point, intervals(samples, level))
    log.info("metrics with %d bootstrap replicates in %.1fs", n_boot, time.perf_counter() - t0)

    calibration = calibration_summary(probs, targets, task, label_names, n_bins)
    calibration["temperature"] = None
    if have_val:
        temperature = fit_temperature(val_probs, val_targets, task)
        after = calibration_summary(
            apply_temperature(probs, temperature, task), targets, task, label_names, n_bins
        )
        calibration.update(temperature=temperature, temperature_fitted_on="val", after_temperature=after)

    codes = cluster_codes(patient_ids, len(probs))
    has_patients = patient_ids is not None and any(str(p) for p in patient_ids)
    return {
        "task": task,
        "label_names": list(label_names),
        "n_images": len(probs),
        "n_patients": int(len(np.unique(codes))),
        "bootstrap": {
            "n_boot": n_boot,
            "level": level,
            "seed": seed,
            "unit": "patient" if has_patients else "image",
            "method": "percentile",
        },
        "thresholds": {"policy": str(policy), "chosen_on": chosen_on, "values": thresholds},
        "metrics": metrics,
        "calibration": calibration,
    }


class _RowView:
    """Selected rows of the image memmap, read one batch at a time (a test split of a large
    dataset need not fit in memory at once)."""

    def __init__(self, images: np.ndarray, rows: np.ndarray):
        self.images, self.rows = images, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> np.ndarray:
        return np.asarray(self.images[self.rows[index]])


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    data: str | Path | None = None,
    threshold_policy: str = "youden",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    batch_size: int = 256,
    device: str = "auto",
    figures: bool = True,
    store_thresholds: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate ``run_dir`` on ``split`` and write predictions.csv, metrics.json, figures/.

    ``data`` evaluates on another prepared cache (external validation); it must have the model's
    label names. Thresholds chosen on the run's own validation split are stored in the
    checkpoint (``store_thresholds``) so that prediction uses them. Returns the metrics dict,
    exactly as written to ``metrics.json`` (undefined values are ``None``).
    """
    from chestxai.evaluation.inputs import load_inputs
    from chestxai.models.checkpoint import load_model, update_thresholds
    from chestxai.models.predict import predict_probs

    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise FileNotFoundError(f"run directory {run.root} does not exist")
    device = _device(device)
    model, ckpt = load_model(run.require_checkpoint(), device=device)
    inputs = load_inputs(run, ckpt, data, split)
    cache, names, task = inputs.cache, list(ckpt["label_names"]), inputs.cache.task
    if split == "val":
        log.warning(
            "evaluating on val, the split thresholds and temperature are fitted on: optimistic numbers"
        )

    def predict(rows: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        images = _RowView(cache.images, rows)
        p = predict_probs(
            model, images, ckpt["preprocess"], batch_size=batch_size, device=device, progress=progress
        )
        log.info("predicted %d images in %.1fs", len(rows), time.perf_counter() - t0)
        return p

    rows = inputs.split_rows[split]
    val_rows = inputs.split_rows.get("val", np.zeros(0, int))
    probs = predict(rows)
    val_probs = probs if split == "val" else (predict(val_rows) if len(val_rows) else None)

    patients = cache.frame["patient_id"].astype(str).to_numpy()
    result = evaluate_predictions(
        probs,
        cache.labels[rows],
        task,
        names,
        val_probs=val_probs,
        val_targets=cache.labels[val_rows] if val_probs is not None else None,
        patient_ids=patients[rows],
        threshold_policy=threshold_policy,
        default_thresholds=ckpt.get("thresholds"),
        n_boot=n_boot,
        seed=seed,
        level=level,
    )
    result = {
        "run": str(run.root),
        "split": split,
        "cache": str(cache.path),
        "splits_from": inputs.splits_from,
        "checkpoint": str(run.checkpoint),
        **result,
    }

    # predictions.csv: the validation rows (threshold choice) and the evaluated rows
    parts = [("val", val_rows, val_probs)] if split != "val" and val_probs is not None else []
    parts.append((split, rows, probs))
    frame = pd.concat(
        [
            predictions_frame(
                cache.frame["image_id"].to_numpy(str)[r], patients[r], [s] * len(r), p, cache.labels[r], names
            )
            for s, r, p in parts
        ],
        ignore_index=True,
    )
    write_predictions(frame, run.predictions)

    th = result["thresholds"]
    if store_thresholds and th["chosen_on"] in ("val", "fixed") and inputs.own_cache:
        update_thresholds(run.checkpoint, th["values"])
        th["stored_in_checkpoint"] = True
        log.info("stored %s thresholds in %s", th["policy"], run.checkpoint)
    else:
        th["stored_in_checkpoint"] = False

    if figures:
        from chestxai.evaluation.figures import write_figures

        history = pd.read_csv(run.history) if run.history.exists() else None
        written = write_figures(
            run.figures,
            probs,
            cache.labels[rows],
            task,
            names,
            th["values"],
            result["calibration"].get("temperature"),
            history,
        )
        result["figures"] = sorted(written)
    result = to_jsonable(result)  # what is returned is exactly what metrics.json holds (NaN -> None)
    write_json(result, run.metrics)
    log.info("wrote %s, %s", run.predictions, run.metrics)
    return result

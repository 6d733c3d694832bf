"""``evaluate``: score a trained run (or an ensemble run) on its validation and evaluated split
and write predictions, metrics, figures and the operating thresholds (names per split in
:mod:`chestxai.rundir.layout`).

Order matters for honest numbers: thresholds and the calibration temperature are fitted on the
*validation* split and only then applied to the evaluated split. Confidence intervals resample
patients (see :mod:`chestxai.metrics.bootstrap`). Under torchrun every rank predicts a block
of the rows and rank 0 alone goes on (:mod:`chestxai.evaluation.sharded_inference`): the same files as one
process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.evaluation.outputs import SplitScores, write_split_outputs
from chestxai.evaluation.sharded_inference import Shards, predict_sharded
from chestxai.metrics.bootstrap import (
    SMALL_N,
    SMALL_N_NOTE,
    UNIT_NOTES,
    bootstrap_samples,
    bootstrap_unit,
    count_clusters,
    intervals,
    small_sample_classes,
)
from chestxai.metrics.calibration import apply_temperature, calibration_summary, fit_temperature
from chestxai.metrics.classification import classification_metrics
from chestxai.metrics.task_rules import check_arrays, uses_thresholds
from chestxai.metrics.threshold_policy import choose_thresholds, parse_policy
from chestxai.rundir import RunDir
from chestxai.rundir.guard import check_not_training, check_output_dir
from chestxai.rundir.tables import read_history

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
    calibrated: dict | None = None,
    default_source: str = "checkpoint",
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds about one split, from arrays alone (no files, no model).

    Thresholds follow ``threshold_policy`` on the validation arrays when given, else
    ``default_thresholds`` (the run's operating thresholds, named by ``default_source``), else
    0.5. Multi-class decisions are the argmax and use no thresholds. ``calibrated``: what
    :func:`calibrate_on_val` returned when ``probs``/``val_probs`` are already temperature-scaled
    (recorded under ``calibrated``; no second temperature is fitted).
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
        chosen_on = default_source if default_thresholds else "default 0.5"
        log.warning("no validation images to choose %s thresholds on; using %s thresholds", policy, chosen_on)
    th = np.array([thresholds[n] for n in label_names]) if thresholds else None

    t0 = time.perf_counter()
    point = classification_metrics(probs, targets, task, label_names, th)
    samples = bootstrap_samples(probs, targets, task, label_names, th, patient_ids, n_boot=n_boot, seed=seed)
    metrics = _with_intervals(point, intervals(samples, level))
    log.info("metrics with %d bootstrap replicates in %.1fs", n_boot, time.perf_counter() - t0)

    calibration = calibration_summary(probs, targets, task, label_names, n_bins)
    calibration["temperature"] = None
    if have_val and not calibrated:
        temperature = fit_temperature(val_probs, val_targets, task)
        after = calibration_summary(
            apply_temperature(probs, temperature, task), targets, task, label_names, n_bins
        )
        calibration.update(temperature=temperature, temperature_fitted_on="val", after_temperature=after)

    unit = bootstrap_unit(patient_ids, len(probs))  # images without an id count as their own patient
    small = small_sample_classes(point["per_class"])
    return {
        "task": task,
        "label_names": list(label_names),
        "n_images": len(probs),
        "n_patients": count_clusters(patient_ids, len(probs)),  # = n_images when unit is "image"
        "bootstrap": {
            "n_boot": n_boot,
            "level": level,
            "seed": seed,
            "unit": unit,
            "method": "percentile",
            "unit_note": UNIT_NOTES[unit],
        },
        "small_n": {
            "min_count": SMALL_N,
            "classes": small,
            "note": SMALL_N_NOTE if small else f"every class has at least {SMALL_N} positives and negatives",
        },
        "thresholds": {"policy": str(policy), "chosen_on": chosen_on, "values": thresholds},
        "calibrated": calibrated,
        "metrics": metrics,
        "calibration": calibration,
    }


def calibrate_on_val(
    probs: np.ndarray, val_probs: np.ndarray | None, val_targets: np.ndarray | None, task: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``--calibrated``: fit a temperature on validation and scale both splits' probabilities with
    it, so thresholds are chosen and metrics computed on calibrated probabilities."""
    if val_probs is None or val_targets is None or not len(val_probs):
        raise ValueError(
            "--calibrated needs validation images to fit the temperature on, and the evaluated cache has no "
            "'val' split; evaluate without --calibrated"
        )
    temperature = float(fit_temperature(val_probs, val_targets, task))
    info = {"temperature": temperature, "fitted_on": "val", "applied_before": "thresholds and metrics"}
    return apply_temperature(probs, temperature, task), apply_temperature(val_probs, temperature, task), info


class _RowView:
    """Selected rows of the image memmap, read one batch at a time (a test split of a large
    dataset need not fit in memory at once)."""

    def __init__(self, images: np.ndarray, rows: np.ndarray):
        self.images, self.rows = images, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> np.ndarray:
        return np.asarray(self.images[self.rows[index]])


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    data: str | Path | None = None,
    threshold_policy: str = "youden",
    *,
    out: str | Path | None = None,
    calibrated: bool = False,
    force: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    batch_size: int = 256,
    device: str = "auto",
    figures: bool = True,
    store_thresholds: bool = True,
    progress: bool = False,
    shards: Shards | None = None,
    subgroups: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Evaluate ``run_dir`` (a trained or an ensemble run) on ``split``; write its predictions,
    metrics and figures under the split's names, and the thresholds to ``RUN/thresholds.json``.

    ``data`` scores another prepared cache (external validation; it must have the model's label
    names) and then needs ``out``, a new or empty folder (``force``: any folder) that receives the
    outputs, so the run's own results stay its own. A run that is still training is refused
    (``force`` scores its current checkpoint). Returns the metrics dict, exactly as written
    (undefined values are ``None``).

    ``shards`` (torchrun): this rank predicts its block of the rows and hands it to rank 0, which
    writes everything and returns the metrics; the other ranks write nothing and return ``None``.

    ``subgroups`` (``evaluate --by``): keyword arguments of
    :func:`chestxai.evaluation.subgroups.subgroups_entry` (``by``, ``age_edges``, ``min_count``);
    the result goes into ``metrics.json`` as ``subgroups``. The columns are checked before predicting.
    """
    from chestxai.models.trained_run import TrainedRun  # torch: only when a run is scored

    run = RunDir(Path(run_dir))
    run.require_dir()
    check_not_training(run, force, "evaluate it")
    trained = TrainedRun.open(run, device)
    checkpoint = str(trained.checkpoint) if trained.checkpoint is not None else None
    inputs = trained.inputs(data)
    if not inputs.own_cache and out is None:
        raise ValueError(
            f"--data {data} is not the cache {run.root} was trained on: pass --out DIR for its predictions, "
            f"metrics and figures, so the run's own results stay its own"
        )
    dest = RunDir(check_output_dir(out, force)) if out is not None else run
    cache, names, task = inputs.cache, trained.label_names, inputs.cache.task
    if subgroups:
        from chestxai.evaluation.subgroups import check_columns

        check_columns(cache.frame, subgroups["by"], f"the cache {cache.path}")
    if split == "val":
        log.warning(
            "evaluating on val, the split thresholds and temperature are fitted on: optimistic numbers"
        )

    def predict(rows: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        p = trained.predict(_RowView(cache.images, rows), batch_size=batch_size, progress=progress)
        log.info("predicted %d images in %.1fs", len(rows), time.perf_counter() - t0)
        return p

    rows = inputs.rows(split)
    val_rows = inputs.optional_rows("val")
    row_sets = [rows] if split == "val" or not len(val_rows) else [rows, val_rows]
    if shards is not None and shards.world_size > 1:
        predicted = predict_sharded(predict, row_sets, batch_size, shards)
        if predicted is None:  # not rank 0: rank 0 has our probabilities and writes the outputs
            return None
    else:
        predicted = [predict(r) for r in row_sets]
    probs = predicted[0]
    val_probs = probs if split == "val" else (predicted[1] if len(predicted) > 1 else None)
    val_targets = cache.labels[val_rows] if val_probs is not None else None
    applied = None
    if calibrated:
        probs, val_probs, applied = calibrate_on_val(probs, val_probs, val_targets, task)
        if split == "val":
            val_probs = probs

    operating = trained.operating_thresholds()
    patients = cache.frame["patient_id"].astype(str).to_numpy()
    result = evaluate_predictions(
        probs,
        cache.labels[rows],
        task,
        names,
        val_probs=val_probs,
        val_targets=val_targets,
        patient_ids=patients[rows],
        threshold_policy=threshold_policy,
        default_thresholds=operating.values,
        default_source=f"{operating.source} of {run.root}",
        n_boot=n_boot,
        seed=seed,
        level=level,
        calibrated=applied,
    )
    result = {
        "run": str(run.root),
        "split": split,
        "cache": str(cache.path),
        "splits_from": inputs.splits_from,
        "model": trained.description,
        "checkpoint": checkpoint,
        "checkpoint_epoch": trained.epoch,
        **result,
    }
    if subgroups:
        from chestxai.evaluation.subgroups import subgroups_entry

        result["subgroups"] = subgroups_entry(
            cache.frame.iloc[rows].reset_index(drop=True),
            probs,
            cache.labels[rows],
            task,
            names,
            result["thresholds"]["values"],
            patients[rows],
            n_boot=n_boot,
            seed=seed,
            level=level,
            **subgroups,
        )
    ids = cache.frame["image_id"].to_numpy(str)

    def scores(name: str, r: np.ndarray, p: np.ndarray) -> SplitScores:
        return SplitScores(name, ids[r], patients[r], p, cache.labels[r])

    # the evaluated rows, after the validation rows the thresholds were chosen on
    parts = [scores("val", val_rows, val_probs)] if split != "val" and val_probs is not None else []
    parts.append(scores(split, rows, probs))
    own_outputs = inputs.own_cache and dest == run
    return write_split_outputs(
        dest,
        result,
        parts,
        figures=figures,
        history=read_history(run),
        thresholds_for=run if store_thresholds and own_outputs else None,
        epoch=trained.epoch,
        checkpoint=checkpoint,
    )

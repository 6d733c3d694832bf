"""``chestxai uncertainty RUN --conformal``: calibrate on val, measure on test, write ``RUN/uncertainty/conformal/``.

The probabilities are the run's own ``predictions.csv`` (``chestxai evaluate`` writes the test rows
and the val rows its thresholds were chosen on, after the operating temperature when the run was
evaluated ``--calibrated``): no model is loaded, and what is calibrated is exactly what was
evaluated. The method follows the task (:mod:`chestxai.uncertainty.conformal`).

Written (names from :class:`~chestxai.rundir.UncertaintyDir`): ``conformal.csv`` - val and test rows,
``p_``/``y_`` columns as in every predictions file, then ``conformal_set`` and
``conformal_set_size`` (multi-class, multi-label) or ``triage`` (binary), and ``covered`` (true
class in the set) or ``fnr`` (share of the image's positive findings not called); and
``uncertainty.json`` with the ``conformal`` entry (``docs/CONFORMAL.md`` lists its keys) and a
referral table: the conformal ranking (distance of the set from a single class) beside the
softmax baseline, the confidence, random and oracle rankings on the same probabilities.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.atomic import atomic_dir
from chestxai.metrics import conformal as k
from chestxai.metrics.bootstrap import bootstrap_unit, count_clusters
from chestxai.rundir import RunDir
from chestxai.rundir.guard import check_not_training, has_marker
from chestxai.rundir.jsonfile import read_json, write_json
from chestxai.rundir.layout import UncertaintyDir
from chestxai.rundir.predictions import predictions_frame, read_predictions, write_predictions
from chestxai.rundir.thresholds import operating_thresholds
from chestxai.uncertainty.conformal import ASSUMPTION, RunConformal, calibrate_run
from chestxai.uncertainty.measures import softmax_uncertainty
from chestxai.uncertainty.referral import BASELINES, referral_analysis

log = logging.getLogger(__name__)
WRITTEN_BY = "chestxai uncertainty --conformal"


def _task_and_names(run: RunDir) -> tuple[str, list[str], int | None]:
    if not run.metrics.is_file():
        raise FileNotFoundError(f"{run.metrics} does not exist; run `chestxai evaluate {run.root}` first")
    m = read_json(run.metrics)
    task, names = m.get("task"), m.get("label_names")
    if task not in ("binary", "multiclass", "multilabel") or not names:
        raise ValueError(
            f"{run.metrics} names no task and label_names; re-run `chestxai evaluate {run.root}`"
        )
    return task, list(names), m.get("checkpoint_epoch")


def conformal_uncertainty(cal: RunConformal, probs: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Referral ranking by the conformal set: ``|set size - 1|`` (an empty or ambiguous set first),
    ties broken by the softmax baseline (< 1, so the set decides first)."""
    size = sets.sum(axis=1)
    return np.abs(size - 1.0) + softmax_uncertainty(probs, cal.task) * 0.999


def _thresholds(cal: RunConformal) -> dict:
    if cal.method == "crc":
        return {"call_finding_if_p_at_least": cal.calibration.threshold}
    if cal.method == "triage":
        return {**k.triage_cutoffs(cal.calibration), "empty_set_called_at": cal.decision_threshold,
                "bins": "{0} negative, {1} positive, {0, 1} refer, empty: positive if p >= empty_set_called_at"}  # fmt: skip
    return {"qhat": dict(zip(cal.label_names, cal.calibration.to_dict()["qhat"], strict=True))}


def _measure(cal: RunConformal, probs, targets, patients, n_boot, seed) -> tuple[dict, np.ndarray, dict]:
    """Empirical figures on one split, the bool set matrix, and the per-image columns."""
    sets = cal.called(probs)
    cols: dict = {}
    if cal.method == "crc":
        out = k.crc_summary(sets, targets, n_boot, seed, groups=patients)
        cols["fnr"] = k.image_fnr(sets, targets)
        return out, sets, cols
    known = ~np.isnan(targets).any(axis=1)
    y = targets[known, 0].astype(int) if cal.method == "triage" else targets[known].argmax(axis=1)
    out = k.set_summary(sets[known], y)
    covered = np.full(len(probs), np.nan)
    covered[known] = sets[known][np.arange(int(known.sum())), y]
    cols["covered"] = covered
    if cal.method == "triage":
        bins = k.triage_bins(probs[known, 0], cal.calibration, cal.decision_threshold)
        out["triage"] = k.triage_summary(bins, y)
        out["share_referred"] = out["triage"]["share_referred"]["value"]
    out["n_unknown_target"] = int((~known).sum())
    return out, sets, cols


def _check_output(out: UncertaintyDir, force: bool) -> None:
    if (
        out.root.exists()
        and any(out.root.iterdir())
        and not force
        and not has_marker(WRITTEN_BY)(out.summary)
    ):
        raise FileExistsError(
            f"{out.root} exists and was not written by `{WRITTEN_BY}`; move it away or pass --force"
        )


def conformal_run(
    run_dir: str | Path,
    alpha: float = 0.1,
    *,
    score: str = "lac",
    class_conditional: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    force: bool = False,
) -> dict:
    """Run the stage (module doc); returns what ``uncertainty.json`` holds."""
    k.conformal_rank(1, alpha)  # alpha outside (0, 1) fails here, before anything is read
    run = RunDir(Path(run_dir))
    run.require_dir()
    check_not_training(run, force, "calibrate it")
    task, names, epoch = _task_and_names(run)
    preds = read_predictions(run.predictions)
    if preds.label_names != names:
        raise ValueError(
            f"{run.predictions} has labels {preds.label_names}, {run.metrics} {names}; re-run evaluate"
        )
    val, test = preds.select("val"), preds.select("test")
    if not len(val.probs):
        raise ValueError(f"{run.predictions} has no val rows to calibrate on; run `chestxai evaluate {run.root}` "
                         "on a cache with a val split")  # fmt: skip
    if not len(test.probs):
        raise ValueError(f"{run.predictions} has no test rows to measure on")
    out = run.conformal
    _check_output(out, force)
    operating = operating_thresholds(run, names)
    cal = calibrate_run(task, names, val.probs, val.targets, alpha, score=score,
                        class_conditional=class_conditional, temperature=operating.temperature,
                        decision_threshold=operating.values[names[0]], epoch=epoch, seed=seed)  # fmt: skip
    test_patients = test.frame["patient_id"].astype(str).to_numpy()
    measured, sets, cols = _measure(cal, test.probs, test.targets, test_patients, n_boot, seed)
    val_measured, val_sets, val_cols = _measure(cal, val.probs, val.targets, None, 0, seed)
    headline = measured["fnr"] if cal.method == "crc" else measured["coverage"]
    entry = {
        **cal.to_dict(),
        "alpha": float(alpha),
        "guarantee": cal.guarantee(),
        "assumption": ASSUMPTION,
        "calibrated_on": {
            "split": "val",
            "n_images": len(val.probs),
            "source": str(run.predictions),
            "checkpoint_epoch": epoch,
        },  # fmt: skip
        "thresholds": _thresholds(cal),
        "measured_on": "test",
        "coverage" if cal.method != "crc" else "fnr": headline,
        "mean_set_size": measured["mean_set_size"],
        "share_referred": measured.get("share_referred"),
        "test": measured,
        "val": val_measured,
        "val_note": "the calibration split itself, for the gap to test (in-sample, no guarantee)",
    }
    th = None if task == "multiclass" else np.array([operating.values[n] for n in names])
    rankings = {} if cal.method == "crc" else {"conformal_set": conformal_uncertainty(cal, test.probs, sets)}
    known = ~np.isnan(test.targets).any(axis=1) if task == "multiclass" else np.ones(len(test.probs), bool)
    analysis = referral_analysis(
        test.probs[known], {n: u[known] for n, u in rankings.items()}, test.targets[known], task, th,
        patient_ids=test_patients[known], n_boot=n_boot, seed=seed,
    )  # fmt: skip
    summary = {
        "written_by": WRITTEN_BY,
        "format": 1,
        "run": str(run.root),
        "method": "conformal",
        "split": "test",
        "task": task,
        "label_names": names,
        "n_images": len(test.probs),
        "n_patients": count_clusters(test_patients, len(test.probs)),
        "seed": seed,
        "conformal": entry,
        "thresholds": {
            "values": operating.values,
            "source": operating.source,
            "temperature": operating.temperature,
        },
        "bootstrap": {
            "n_boot": n_boot,
            "level": 0.95,
            "unit": bootstrap_unit(test_patients, len(test.probs)),
        },
        "rankings": {"method": list(rankings), "baselines": list(BASELINES)},
        **analysis,
        "definitions": {
            "conformal_set": "referral by the conformal set: |set size - 1| (empty or several classes first), "
            "ties by the softmax baseline",
            "softmax": "1 - max p (multi-class), else 0.5 - |p - 0.5| of the least certain label",
            "confidence": "minus the distance of p from the operating threshold",
        },
    }
    frames = []
    for split, part, cal_cols in (("val", val, val_cols), ("test", test, cols)):
        f = predictions_frame(part.frame["image_id"], part.frame["patient_id"], [split] * len(part.probs),
                              part.probs, part.targets, names)  # fmt: skip
        applied = cal.apply_scaled(part.probs)
        frames.append(pd.concat([f, pd.DataFrame({**applied, **cal_cols})], axis=1))
    replace = out.summary.is_file() and has_marker(WRITTEN_BY)(out.summary)
    with atomic_dir(out.root, merge=not replace) as tmp:
        staged = UncertaintyDir(tmp)
        write_predictions(pd.concat(frames, ignore_index=True), staged.conformal_sets)
        write_json(summary, staged.summary)
    log.info("wrote %s", out.root)
    return summary

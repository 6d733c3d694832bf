"""A run's conformal calibration: which method its task gets, and applying it to new probabilities.

The task decides the method (:func:`method_for`): multi-class runs get split-conformal prediction
sets (LAC or APS, optionally class-conditional), binary runs the triage into negative / positive /
refer (FNR and FPR each at most ``alpha``), multi-label runs conformal risk control of the FNR
(one threshold over all findings). The kernels are :mod:`chestxai.metrics.conformal`.

:class:`RunConformal` is what ``uncertainty.json``'s ``conformal`` entry stores and what
``predict`` and ``serve`` read back (:func:`load_conformal`), so all three apply one rule:
probabilities are first scaled by the operating temperature the calibration was made with (the
one ``RUN/thresholds.json`` names, as the run's decisions are), then :meth:`RunConformal.apply`
gives per image ``conformal_set`` (the classes or findings in the set, joined by ``|``) and
``conformal_set_size``, or ``triage`` for a binary run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from chestxai.metrics import conformal as k
from chestxai.metrics.calibration import apply_temperature
from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import read_json

log = logging.getLogger(__name__)

METHODS = {"multiclass": "prediction sets", "binary": "triage", "multilabel": "conformal risk control (FNR)"}
SEPARATOR = "|"

ASSUMPTION = (
    "Calibrated on the validation split and measured on the test split: the guarantee holds only if "
    "validation and test (and any later case) are exchangeable - drawn from one population, in no "
    "particular order; a shift between them (another hospital, another prevalence, an easier split) "
    "voids it, and the empirical test figures show by how much."
)

GUARANTEES = {
    "sets": "P(true class in set) >= 1 - alpha, marginally over calibration and test draws",
    "sets_class_conditional": "P(true class in set | class k) >= 1 - alpha for every class k",
    "triage": "FNR (share of positives triaged negative) <= alpha and FPR (share of negatives triaged "
    "positive) <= alpha, marginally (per class: P(y in set | y) >= 1 - alpha); NPV and PPV depend on the "
    "prevalence and are measured, not guaranteed",
    "crc": "E[share of an image's positive findings not called] <= alpha over images with a positive finding",
}


def method_for(task: str, score: str = "lac") -> str:
    """``lac`` / ``aps`` (multi-class), ``triage`` (binary) or ``crc`` (multi-label)."""
    if task == "multiclass":
        return score
    return {"binary": "triage", "multilabel": "crc"}[task]


@dataclass(frozen=True)
class RunConformal:
    task: str
    label_names: list[str]
    method: str
    temperature: float | None
    calibration: k.SetCalibration | k.CRCCalibration
    #: checkpoint epoch of the probabilities it was calibrated on (``serve`` ignores a stale one)
    epoch: int | None = None
    #: binary triage: where a case with an empty set is called (either call keeps both guarantees):
    #: the run's operating threshold at calibration time
    decision_threshold: float = 0.5

    def to_dict(self) -> dict:
        """The calibration part of the ``conformal`` entry (what :meth:`from_dict` reads back)."""
        return {
            "method": self.method,
            "task": self.task,
            "label_names": list(self.label_names),
            "temperature": self.temperature,
            "calibration": self.calibration.to_dict(),
            "decision_threshold": self.decision_threshold if self.method == "triage" else None,
            "checkpoint_epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunConformal:
        cal_cls = k.CRCCalibration if d["method"] == "crc" else k.SetCalibration
        return cls(d["task"], list(d["label_names"]), d["method"], d.get("temperature"),
                   cal_cls.from_dict(d["calibration"]), epoch=d.get("checkpoint_epoch"),
                   decision_threshold=float(d.get("decision_threshold") or 0.5))  # fmt: skip

    def scaled(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` after the temperature the calibration was made with (none: unchanged)."""
        p = np.asarray(probs, dtype=np.float64)
        return apply_temperature(p, self.temperature, self.task) if self.temperature else p

    def called(self, probs: np.ndarray) -> np.ndarray:
        """Bool ``N x L``: in the set (multi-class, multi-label); for binary the two-class set
        ``[negative, positive]``. ``probs`` are already scaled."""
        p = np.asarray(probs, dtype=np.float64)
        if self.method == "crc":
            return p >= self.calibration.threshold
        if self.method == "triage":
            return k.predict_sets(np.column_stack([1 - p[:, 0], p[:, 0]]), self.calibration)
        return k.predict_sets(p, self.calibration)

    def apply(self, raw_probs: np.ndarray) -> dict[str, list]:
        """Columns for ``raw_probs`` (the model's probabilities, before any temperature)."""
        return self.apply_scaled(self.scaled(raw_probs))

    def apply_scaled(self, probs: np.ndarray) -> dict[str, list]:
        """Columns for probabilities already scaled (a run's ``predictions.csv``)."""
        p = np.asarray(probs, dtype=np.float64)
        if self.method == "triage":
            return {"triage": list(k.triage_bins(p[:, 0], self.calibration, self.decision_threshold))}
        sets = self.called(p)
        names = np.asarray(self.label_names, dtype=object)
        return {
            "conformal_set": [SEPARATOR.join(names[row]) for row in sets],
            "conformal_set_size": [int(v) for v in sets.sum(axis=1)],
        }

    def guarantee(self) -> str:
        """What holds, in words (:data:`GUARANTEES`)."""
        if self.method in ("lac", "aps"):
            return GUARANTEES["sets_class_conditional" if self.calibration.class_conditional else "sets"]
        return GUARANTEES[self.method]

    def describe(self) -> str:
        """One line for ``serve``'s card and logs."""
        a = self.calibration.alpha
        return f"{METHODS[self.task]} ({self.method}) at alpha {a}"


def calibrate_run(
    task: str,
    label_names: list[str],
    val_probs: np.ndarray,
    val_targets: np.ndarray,
    alpha: float,
    *,
    score: str = "lac",
    class_conditional: bool = False,
    temperature: float | None = None,
    decision_threshold: float = 0.5,
    epoch: int | None = None,
    seed: int = 0,
) -> RunConformal:
    """Calibrate on validation rows (``val_probs`` already scaled; rows with unknown targets are
    dropped for sets and triage, unknown findings ignored by CRC)."""
    if class_conditional and task != "multiclass":
        raise ValueError(
            f"--class-conditional applies to multi-class runs; a {task} run's method is already "
            + (
                "per class (FNR and FPR each <= alpha)"
                if task == "binary"
                else "one threshold over all findings"
            )
        )
    if score != "lac" and task != "multiclass":
        raise ValueError(f"--conformal-score {score} applies to multi-class runs, not {task}")
    p, t = np.asarray(val_probs, np.float64), np.asarray(val_targets, np.float64)
    method = method_for(task, score)
    if method == "crc":
        cal = k.calibrate_crc(p, t, alpha)
    else:
        known = ~np.isnan(t).any(axis=1)
        if method == "triage":
            cal = k.calibrate_triage(p[known, 0], t[known, 0].astype(int), alpha)
        else:
            cal = k.calibrate_sets(
                p[known], t[known].argmax(axis=1), alpha, score, class_conditional, seed=seed
            )
    return RunConformal(
        task,
        list(label_names),
        method,
        temperature,
        cal,
        epoch=epoch,
        decision_threshold=float(decision_threshold),
    )


def load_conformal(run: RunDir | str) -> RunConformal | None:
    """The run's calibration (``chestxai uncertainty RUN --conformal``), or None when it has none."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    path = run.conformal.summary
    if not path.is_file():
        return None
    entry = (read_json(path) or {}).get("conformal")
    if not isinstance(entry, dict):
        log.warning(
            "%s has no 'conformal' entry; re-run `chestxai uncertainty %s --conformal`", path, run.root
        )
        return None
    return RunConformal.from_dict(entry)


def guarantee_missed(c: dict) -> bool:
    """Whether the test figures of a ``conformal`` entry miss its guarantee beyond sampling noise:
    a guaranteed error rate whose CI lies wholly above alpha, or a guaranteed coverage whose CI lies
    wholly below 1 - alpha (per class when the sets are class-conditional). One rule for the command's
    line and the report's warning."""
    alpha, test = c["alpha"], c["test"]
    if c["method"] == "crc":
        return (c["fnr"]["ci"][0] or 0) > alpha
    if "triage" in test:
        return any((test["triage"][key]["ci"][0] or 0) > alpha for key in ("fnr", "fpr"))
    if c["calibration"]["class_conditional"]:
        return any((r["ci"][1] or 1) < 1 - alpha for r in test["coverage_by_class"] if r["n"])
    return (c["coverage"]["ci"][1] or 1) < 1 - alpha


#: what the command and the report say when :func:`guarantee_missed` is true / false
MISSED = "the test figures miss the guarantee beyond sampling noise: val and test are not exchangeable here"
HELD = "the test figures are consistent with the guarantee"

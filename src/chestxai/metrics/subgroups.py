"""Subgroup metrics: for whom does the model fail (sex, age, view, site)?

Per group of an attribute and per finding: ``n``, positives, negatives, ROC-AUC, sensitivity
and false-positive rate at the run's thresholds, ECE (:func:`~chestxai.metrics.calibration.expected_calibration_error`'s
equal-width bins), and per group the underdiagnosis rate; each with a bootstrap interval that
resamples patients (:func:`~chestxai.metrics.bootstrap.resample_weights`). Then, per finding
and metric, the largest gap between two groups with its interval.

Rules stated once:

* **Missing is never a group.** A ``None`` group label (unknown sex, age, view) leaves the image
  out of that attribute's groups; the count is reported as ``n_missing``.
* **Too few.** A group is scored for a finding only with at least ``min_count`` positives *and*
  ``min_count`` negatives (default :data:`MIN_COUNT`); else its status is ``"too_few"`` and every
  metric is ``None``: a percentile bootstrap over a handful of cases is no interval, and an AUROC
  over 3 positives is noise. The underdiagnosis rate needs ``min_count`` diseased images.
* **Underdiagnosis** (Seyyed-Kalantari et al., Nature Medicine 2021): a diseased image called
  normal. Multi-label: the image has at least one known positive finding and *every* finding is
  below its threshold (the model's "No Finding"). Binary: a positive image below threshold
  (= 1 - sensitivity). Multi-class: not defined here (no class is known to be "normal"): ``None``.
* **Paired gaps.** Every group is scored on the same replicates (one draw of patients for the
  whole evaluated split, restricted to each group's images), so the difference between two groups
  is bootstrapped replicate by replicate. The largest gap is between the groups with the highest
  and the lowest point estimate among the scored ones; it is ``flagged`` when its interval
  excludes 0. (Choosing the pair on the data makes the flag optimistic when there are many
  groups: read it as a screen, not a test.)

Pure kernels over arrays; the evaluate stage (:mod:`chestxai.evaluation.subgroups`) reads the
groups from the prepared cache and writes the result into ``metrics.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from chestxai.metrics.bootstrap import bootstrap_unit, count_clusters, percentile_interval, resample_weights
from chestxai.metrics.calibration import expected_calibration_error
from chestxai.metrics.decisions import decide
from chestxai.metrics.ranking import RankedScores
from chestxai.metrics.task_rules import check_arrays, valid_mask

#: Default age bin edges in years: 0-20, 20-40, 40-60, 60-80, 80+.
AGE_EDGES = (20.0, 40.0, 60.0, 80.0)
#: A group needs at least this many positives and negatives (diseased images) to be scored.
MIN_COUNT = 10
#: Metrics reported per group and finding, in order.
METRICS = ("roc_auc", "sensitivity", "fpr", "ece")
UNDERDIAGNOSIS_DEFINITION = {
    "multilabel": "share of images with at least one known positive finding whose findings are all below "
    "their thresholds (the model says 'No Finding')",
    "binary": "share of positive images below the threshold (1 - sensitivity)",
    "multiclass": "not defined for a multi-class task (no class is known to be 'normal')",
}
_MAX_ENTRIES = 4_000_000  # weight-matrix entries held at once


def age_bin_names(edges: Sequence[float] = AGE_EDGES) -> list[str]:
    """``[0-20, 20-40, ..., 80+]`` for edges ``(20, 40, 60, 80)``: bins are ``[lo, hi)``."""
    e = [float(x) for x in edges]
    lows = [0.0, *e]
    fmt = "{:g}".format
    return [f"{fmt(lo)}-{fmt(hi)}" for lo, hi in zip(lows[:-1], e, strict=True)] + [f"{fmt(lows[-1])}+"]


def check_age_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """Edges as floats, positive and strictly increasing; a ValueError saying what is wrong."""
    e = tuple(float(x) for x in edges)
    if not e:
        raise ValueError("age bins need at least one edge, e.g. 40,60")
    if e[0] <= 0 or any(b <= a for a, b in zip(e, e[1:], strict=False)) or not all(np.isfinite(e)):
        raise ValueError(
            f"age bin edges {list(e)} must be positive and strictly increasing, e.g. 20,40,60,80"
        )
    return e


def age_groups(ages: Sequence[float] | np.ndarray, edges: Sequence[float] = AGE_EDGES) -> np.ndarray:
    """Object array of bin names (:func:`age_bin_names`) per age; ``None`` where the age is NaN."""
    e = check_age_edges(edges)
    a = np.asarray(ages, dtype=np.float64).ravel()
    names = np.asarray(age_bin_names(e), dtype=object)
    idx = np.searchsorted(np.asarray(e), a, side="right")
    out = np.empty(len(a), dtype=object)
    known = ~np.isnan(a)
    out[known] = names[idx[known]]
    out[~known] = None
    return out


def _group_order(name: str) -> tuple[float, str]:
    """Groups that start with a number (age bins ``0-20``, ``5-20``, ``80+``) in numeric order, others by name."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)", name)
    return (float(match.group(1)) if match else float("inf"), name)


def _missing(labels: np.ndarray) -> np.ndarray:
    """``None``, float NaN and blank text are missing group labels (never a group of their own)."""
    return np.array(
        [
            v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())
            for v in labels
        ],
        dtype=bool,
    )


def _num(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """One-hot ``n x n_bins`` of the equal-width bin of each probability (the calibration module's bins)."""
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = np.zeros((len(p), n_bins))
    out[np.arange(len(p)), idx] = 1.0
    return out


def weighted_ece(p: np.ndarray, y: np.ndarray, weights: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """ECE per weight row (``B x n``): sum over bins of |weighted positives - weighted probability|
    / total weight. A row of ones gives :func:`~chestxai.metrics.calibration.expected_calibration_error`."""
    onehot = _bins(np.asarray(p, dtype=np.float64), n_bins)
    w = np.atleast_2d(weights)
    gap = np.abs(w @ (onehot * y[:, None]) - w @ (onehot * p[:, None])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gap / w.sum(axis=1)


class _Cell:
    """One (group, finding) or (group, underdiagnosis) entry: point estimates and replicate arrays."""

    def __init__(self, rows: np.ndarray, scored: bool, n_boot: int, metrics: Sequence[str]):
        self.rows, self.scored = rows, scored
        self.point: dict[str, float] = {}
        self.samples = {m: np.full(n_boot, np.nan) for m in metrics} if scored else {}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def subgroup_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    groups: Mapping[str, Sequence[object] | np.ndarray],
    thresholds: Sequence[float] | np.ndarray | None = None,
    patient_ids: Sequence[object] | np.ndarray | None = None,
    *,
    min_count: int = MIN_COUNT,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_bins: int = 10,
) -> dict:
    """Per attribute in ``groups`` (name -> group label per image, ``None`` = missing): the
    per-group, per-finding metrics, the underdiagnosis rate and the largest gaps (see the module
    doc for every rule). ``thresholds``: one per finding (``None``: 0.5; ignored for multi-class,
    which decides by argmax). JSON-ready: undefined values are ``None``."""
    probs, targets = check_arrays(probs, targets, task)
    n = len(probs)
    pred = decide(probs, task, thresholds)
    known = valid_mask(targets, task)
    y0 = np.nan_to_num(targets)
    if task == "multilabel":
        diseased = ((targets == 1) & known).any(axis=1)
        called_normal = ~pred.any(axis=1)
    elif task == "binary":
        diseased = (targets[:, 0] == 1) & known[:, 0]
        called_normal = ~pred[:, 0]
    else:
        diseased = called_normal = None

    cells: dict[str, dict] = {}
    for attr, values in groups.items():
        labels = np.asarray(values, dtype=object).ravel()
        if len(labels) != n:
            raise ValueError(f"{attr}: {len(labels)} group labels for {n} images")
        present = ~_missing(labels)
        names = sorted({str(v) for v in labels[present]}, key=_group_order)
        text = np.array([str(v) for v in labels], dtype=object)
        member = {g: present & (text == g) for g in names}
        per_finding = {}
        for c, finding in enumerate(label_names):
            entry = {}
            for g in names:
                rows = np.flatnonzero(member[g] & known[:, c])
                n_pos = int(y0[rows, c].sum())
                cell = _Cell(rows, min(n_pos, len(rows) - n_pos) >= min_count, n_boot, METRICS)
                cell.n, cell.n_pos = len(rows), n_pos
                if cell.scored:
                    cell.ranked = RankedScores(probs[rows, c], y0[rows, c])
                    ones = np.ones((1, len(rows)))
                    vals = _finding_values(cell, probs[rows, c], y0[rows, c], pred[rows, c], ones, n_bins)
                    cell.point = {m: float(v[0]) for m, v in vals.items()}
                    cell.point["ece"] = expected_calibration_error(probs[rows, c], y0[rows, c], n_bins)
                entry[g] = cell
            per_finding[finding] = entry
        under = {}
        if diseased is not None:
            for g in names:
                rows = np.flatnonzero(member[g] & diseased)
                cell = _Cell(rows, len(rows) >= min_count, n_boot, ("rate",))
                cell.n = len(rows)
                if cell.scored:
                    cell.point = {"rate": float(called_normal[rows].mean())}
                under[g] = cell
        cells[attr] = {"names": names, "member": member, "findings": per_finding, "under": under}

    chunk = max(1, min(n_boot, _MAX_ENTRIES // max(n, 1)))
    start = 0
    for w in resample_weights(n, patient_ids, n_boot, seed, chunk=chunk):
        sl = slice(start, start + len(w))
        for attr in cells.values():
            for c, entry in enumerate(attr["findings"].values()):
                for cell in entry.values():
                    if cell.scored:
                        r = cell.rows
                        vals = _finding_values(cell, probs[r, c], y0[r, c], pred[r, c], w[:, r], n_bins)
                        for m, v in vals.items():
                            cell.samples[m][sl] = v
            for cell in attr["under"].values():
                if cell.scored:
                    wr = w[:, cell.rows]
                    cell.samples["rate"][sl] = _ratio(wr @ called_normal[cell.rows], wr.sum(axis=1))
        start += len(w)

    ids = None if patient_ids is None else np.asarray(patient_ids, dtype=object).ravel()
    out = {}
    for attr, a in cells.items():
        members = a["member"]
        result = {
            "groups": {
                g: {
                    "n_images": int(members[g].sum()),
                    "n_patients": count_clusters(
                        None if ids is None else ids[members[g]], int(members[g].sum())
                    ),
                }
                for g in a["names"]
            },
            "n_missing": int(n - sum(int(m.sum()) for m in members.values())),
            "findings": {},
        }
        for finding, entry in a["findings"].items():
            groups_out = {}
            for g, cell in entry.items():
                e = {"n": cell.n, "n_pos": cell.n_pos, "n_neg": cell.n - cell.n_pos}
                e["status"] = "scored" if cell.scored else "too_few"
                for m in METRICS:
                    e[m] = _estimate(cell, m, level)
                groups_out[g] = e
            result["findings"][finding] = {
                "groups": groups_out,
                "largest_gap": {m: _largest_gap(entry, m, level) for m in METRICS},
            }
        if diseased is None:
            result["underdiagnosis"] = None
        else:
            groups_out = {}
            for g, cell in a["under"].items():
                est = _estimate(cell, "rate", level)
                groups_out[g] = {
                    "n_diseased": cell.n,
                    "status": "scored" if cell.scored else "too_few",
                    "value": None if est is None else est["value"],
                    "ci": None if est is None else est["ci"],
                }
            result["underdiagnosis"] = {
                "groups": groups_out,
                "largest_gap": _largest_gap(a["under"], "rate", level),
            }
        out[attr] = result
    return {
        "min_count": int(min_count),
        "too_few_rule": f"a group is scored for a finding only with at least {min_count} positives and "
        f"{min_count} negatives (the underdiagnosis rate: {min_count} diseased images); otherwise "
        "status 'too_few' and every metric null",
        "underdiagnosis_definition": UNDERDIAGNOSIS_DEFINITION[task],
        "gap_rule": "largest gap = highest minus lowest point estimate among the scored groups; its CI "
        "bootstraps that difference on paired replicates; flagged when the CI excludes 0",
        "bootstrap": {
            "n_boot": int(n_boot),
            "level": level,
            "seed": int(seed),
            "unit": bootstrap_unit(patient_ids, n),
            "paired": True,
        },
        "attributes": out,
    }


def _finding_values(
    cell: _Cell, p: np.ndarray, y: np.ndarray, d: np.ndarray, w: np.ndarray, n_bins: int
) -> dict[str, np.ndarray]:
    """ROC-AUC, sensitivity, FPR, ECE of one cell for each weight row (``B x n_cell``)."""
    d = d.astype(np.float64)
    return {
        "roc_auc": cell.ranked.auc(w),
        "sensitivity": _ratio(w @ (d * y), w @ y),
        "fpr": _ratio(w @ (d * (1 - y)), w @ (1 - y)),
        "ece": weighted_ece(p, y, w, n_bins),
    }


def _estimate(cell: _Cell, metric: str, level: float) -> dict | None:
    if not cell.scored:
        return None
    lo, hi = percentile_interval(cell.samples[metric], level)
    return {"value": _num(cell.point[metric]), "ci": [_num(lo), _num(hi)]}


def _largest_gap(entry: Mapping[str, _Cell], metric: str, level: float) -> dict | None:
    """Highest minus lowest scored group, the paired bootstrap interval of that difference."""
    scored = {g: c for g, c in entry.items() if c.scored and np.isfinite(c.point.get(metric, np.nan))}
    if len(scored) < 2:
        return None
    hi = max(scored, key=lambda g: scored[g].point[metric])
    lo = min(scored, key=lambda g: scored[g].point[metric])
    diff = scored[hi].samples[metric] - scored[lo].samples[metric]
    ci = percentile_interval(diff, level)
    return {
        "higher": hi,
        "lower": lo,
        "value": _num(scored[hi].point[metric] - scored[lo].point[metric]),
        "ci": [_num(ci[0]), _num(ci[1])],
        "flagged": bool(ci[0] > 0 or ci[1] < 0),
    }

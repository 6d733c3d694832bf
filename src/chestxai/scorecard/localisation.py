"""The scorecard's localisation block: one (method, layer)'s maps against ground truth, by the
field's published protocols at once, each beside the random-map control, with bootstrap CIs.

Every figure is a mean of per-item scores (an item is one (image, finding) pair; maps resized to
the image by :meth:`MapSet.full_map`, bilinear, as CheXlocalize resizes). Which items each uses:

* **positives only** (the truth has a pixel): ``hit_rate`` (CheXlocalize's hit = Zhang's pointing
  game: the map's argmax inside the truth, within ``tolerance`` pixels), ``auprc`` (Arun et al.: the
  average precision of the map's pixels against the mask), ``relevance_mass`` and
  ``relevance_rank`` (Quantus / Arras et al.), ``iobb_accuracy`` (ChestX-ray8: the best IoBB of the
  map's boxes - the explain stage's boxes, a fraction of the map's maximum, its default settings -
  against the GT boxes, or the mask where there are no boxes, counted when ``IoBB > T``);
* **positives and known negatives** (CheXlocalize's full-set mIoU): ``miou_otsu`` (Otsu
  segmentation, no cutoff) and ``miou_tuned`` (per-finding thresholds tuned on val, then the
  per-finding probability cutoff tuned on val empties the mask of an item below it); an IoU where
  both masks are empty is undefined and left out, so a negative counts only when the map draws
  something on it (IoU 0). A finding without a val positive keeps Otsu (its threshold is null).

Means pool the items of every finding (``per_finding`` has each finding's own). CIs: 95%
percentile intervals of ``n_boot`` bootstrap replicates resampling :attr:`MapSet.groups` (patients,
each with all its items; images where there are no patient ids), per-item scores computed once
and reweighted per replicate (:func:`chestxai.metrics.bootstrap.resample_weights`). The control
(the seeded random map on the same items, thresholds tuned on its own val maps) and the human
benchmark are scored on the *same* replicates, so differences and percentage decreases are paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chestxai.explain.boxes import boxes_from_heatmap
from chestxai.explain.localization import IOBB_THRESHOLDS, best_overlap, pointing_hit
from chestxai.explain.settings import ExplainSettings
from chestxai.metrics.bootstrap import bootstrap_unit, count_clusters, percentile_interval, resample_weights
from chestxai.metrics.saliency_localization import (
    best_cutoff,
    best_threshold,
    mask_iou,
    otsu_mask,
    percentage_decrease,
    pixel_average_precision,
    relevance_mass,
    relevance_rank,
    threshold_ious,
    threshold_mask,
)
from chestxai.scorecard.maps import MapSet

#: the block's scalar figures, in the order reports show them (``iobb_accuracy`` is nested by T)
METRICS = ("hit_rate", "miou_otsu", "miou_tuned", "auprc", "relevance_mass", "relevance_rank")
LEVEL = 0.95
#: per-replicate weight entries held at once (replicates x items)
_MAX_ENTRIES = 2_000_000


def protocol_text(tolerance: float, iobb_thresholds: Sequence[float], n_boot: int, unit: str) -> str:
    """The one paragraph ``scorecard.json`` and the report print: which paper each figure follows."""
    box = ExplainSettings()
    ts = ", ".join(f"{t:g}" for t in iobb_thresholds)
    return (
        "Maps resized (bilinear) to each image, as CheXlocalize does. hit_rate: CheXlocalize's hit rate "
        f"(= Zhang et al.'s pointing game: the map's argmax inside the truth, tolerance {tolerance:g} px), "
        "positives only. miou_otsu / miou_tuned: CheXlocalize's mIoU over positives and known negatives "
        "(IoU left out where both masks are empty), the min-max normalised map binarised by Otsu "
        "(their contour-filled segmentation) or by per-finding thresholds tuned on val (grid 0.2-0.8, "
        "objective the true-positive mIoU) with per-finding probability cutoffs tuned on val (grid "
        "0.0-0.8, objective the mIoU of the Otsu segmentations; below the cutoff the mask is empty). "
        "auprc: Arun et al. 2021's localisation utility, the average precision of the map's pixels "
        "against the mask, positives only. relevance_mass / relevance_rank: relevance mass and rank "
        "accuracy (Arras et al. 2022, as Quantus 0.6 computes them), positives only. iobb_accuracy: "
        f"ChestX-ray8 (Wang et al. 2017), the share of positives whose best IoBB > T for T in {ts}, "
        f"boxes from the map at {box.threshold} of its maximum (at most {box.max_boxes}, the explain "
        "stage's defaults) against the GT boxes (the mask where there are none). Means pool the items of "
        f"every finding. 95% percentile CIs from {n_boot} bootstrap replicates resampling {unit}s; the "
        "random-map control and the human benchmark are scored through the same pipeline on the same "
        "replicates (paired). Agreement with ground truth measures the model and the method together."
    )


def _iobb_key(t: float) -> str:
    return f"{t:g}"


def _tune(ms: MapSet | None, findings: Sequence[str], progress: bool) -> tuple[dict | None, dict | None]:
    """Per-finding CheXlocalize threshold and probability cutoff tuned on ``ms``'s scored items."""
    if ms is None:
        return None, None
    idx = ms.scored()
    by_finding: dict[str, list[int]] = {f: [] for f in findings}
    for i in idx:
        if ms.findings[i] in by_finding:
            by_finding[ms.findings[i]].append(int(i))
    thresholds, cutoffs = {}, {}
    for f, items in by_finding.items():
        rows, otsu_ious, positive = [], [], []
        for i in _progress(items, progress, f"tuning {ms.method} on {ms.split} ({f})"):
            full, truth = ms.full_map(i), ms.truth[i]
            rows.append(threshold_ious(full, truth))
            otsu_ious.append(mask_iou(otsu_mask(full), truth))
            positive.append(bool(truth.any()))
        rows_arr = np.array(rows, np.float64).reshape(len(items), -1)
        thresholds[f] = best_threshold(rows_arr)[0]
        cutoffs[f] = best_cutoff(np.array(otsu_ious), np.array(positive), ms.probabilities[items])[0]
    return thresholds, cutoffs


def _progress(items: Sequence[Any], on: bool, desc: str):
    if not on:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


def item_scores(
    ms: MapSet,
    idx: np.ndarray,
    thresholds: Mapping[str, float | None] | None = None,
    cutoffs: Mapping[str, float | None] | None = None,
    *,
    tolerance: float = 0.0,
    iobb_thresholds: Sequence[float] = IOBB_THRESHOLDS,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-item scores of the items ``idx`` (each with known truth): one float array per figure
    (``hit_rate``, ``miou_otsu``, ..., ``iobb@T``), NaN where the item does not count (module doc).
    ``miou_tuned`` is all NaN without ``thresholds``."""
    box = ExplainSettings()
    n = len(idx)
    out = {m: np.full(n, np.nan) for m in METRICS}
    out.update({f"iobb@{_iobb_key(t)}": np.full(n, np.nan) for t in iobb_thresholds})
    for k, i in enumerate(_progress(list(idx), progress, f"scoring {ms.method} @ {ms.layer}")):
        full, truth = ms.full_map(int(i)), ms.truth[int(i)]
        finding = ms.findings[int(i)]
        otsu = otsu_mask(full)
        out["miou_otsu"][k] = mask_iou(otsu, truth)
        if thresholds is not None:
            t = thresholds.get(finding)
            seg = otsu if t is None else threshold_mask(full, t)
            c = (cutoffs or {}).get(finding)
            if c is not None and ms.probabilities[int(i)] < c:
                seg = np.zeros_like(seg)
            out["miou_tuned"][k] = mask_iou(seg, truth)
        if not truth.any():
            continue
        out["hit_rate"][k] = float(pointing_hit(full, mask=truth, tolerance=tolerance))
        out["auprc"][k] = pixel_average_precision(full, truth)
        out["relevance_mass"][k] = relevance_mass(full, truth)
        out["relevance_rank"][k] = relevance_rank(full, truth)
        gt_boxes = ms.boxes[int(i)] if ms.boxes else []
        pred = [
            b.as_tuple()
            for b in boxes_from_heatmap(full, box.threshold, box.max_boxes, box.min_area_fraction)
        ]
        best_iobb = best_overlap(pred, gt_boxes, None if gt_boxes else truth)[1]
        for t in iobb_thresholds:
            out[f"iobb@{_iobb_key(t)}"][k] = float(best_iobb > t)
    return out


class _Bootstrap:
    """Pooled means of many score columns over many item subsets, and their bootstrap replicates.

    Each (subset, column) mean is ``sum(w * s) / sum(w)`` over the subset's items where the score is
    defined; the point value uses weights 1, replicate ``b`` the weights of
    :func:`resample_weights` (one matrix product per chunk of replicates)."""

    def __init__(
        self,
        columns: Mapping[str, np.ndarray],
        subsets: Mapping[str, np.ndarray],
        groups: Sequence[str],
        n_boot: int,
        seed: int,
    ):
        names = list(columns)
        n = len(groups)
        scores = np.stack([columns[c] for c in names], axis=1) if names else np.zeros((n, 0))
        keys = [(s, c) for s in subsets for c in names]
        defined = np.concatenate(
            [~np.isnan(scores) & np.asarray(subsets[s], bool)[:, None] for s in subsets], axis=1
        )
        values = np.where(defined, np.tile(np.nan_to_num(scores), len(subsets)), 0.0)
        self.index = {k: j for j, k in enumerate(keys)}
        self.point = self._ratio(values.sum(axis=0, keepdims=True), defined.sum(axis=0, keepdims=True))[0]
        self.samples = np.empty((n_boot, len(keys)))
        chunk = max(1, _MAX_ENTRIES // max(n, 1))
        start = 0
        for w in resample_weights(n, list(groups), n_boot, seed, chunk=chunk):
            self.samples[start : start + len(w)] = self._ratio(w @ values, w @ defined)
            start += len(w)

    @staticmethod
    def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def value(self, subset: str, column: str) -> float:
        return float(self.point[self.index[(subset, column)]])

    def replicates(self, subset: str, column: str) -> np.ndarray:
        return self.samples[:, self.index[(subset, column)]]

    def ci(self, subset: str, column: str) -> dict[str, float | None]:
        return _ci(self.value(subset, column), self.replicates(subset, column))


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _ci(value: float, samples: np.ndarray) -> dict[str, float | None]:
    if not np.isfinite(value):
        return {"value": None, "ci_low": None, "ci_high": None}
    lo, hi = percentile_interval(samples, LEVEL)
    return {"value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi)}


def _figures(boot: _Bootstrap, subset: str, prefix: str, iobb_thresholds: Sequence[float]) -> dict:
    out: dict[str, Any] = {m: boot.ci(subset, f"{prefix}{m}") for m in METRICS}
    out["iobb_accuracy"] = {
        _iobb_key(t): boot.ci(subset, f"{prefix}iobb@{_iobb_key(t)}") for t in iobb_thresholds
    }
    return out


def _versus(boot: _Bootstrap, column: str) -> dict[str, Any]:
    """Paired bootstrap difference method - control; ``better`` when its whole CI is above 0."""
    diff = _ci(
        boot.value("all", f"m:{column}") - boot.value("all", f"c:{column}"),
        boot.replicates("all", f"m:{column}") - boot.replicates("all", f"c:{column}"),
    )
    return {"difference": diff, "better": bool(diff["ci_low"] is not None and diff["ci_low"] > 0)}


def _check_aligned(test: MapSet, other: MapSet, what: str) -> None:
    if list(other.image_ids) != list(test.image_ids) or list(other.findings) != list(test.findings):
        raise ValueError(
            f"the {what} maps ({other.method} on {other.split}) are not on the test items of {test.method}: "
            "build both MapSets from the same items in the same order"
        )


def _human_scores(
    test: MapSet, idx: np.ndarray, human: Mapping[tuple[str, str], np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which scored items the human benchmark covers, and the humans' per-item IoU and hit.

    ``human[(image_id, finding)]`` is a boolean segmentation at the image's size (-> IoU, as
    CheXlocalize's human benchmark mIoU) or an ``k x 2`` array of ``(x, y)`` points in image pixels
    (-> hit when any point is in the truth, as its human-benchmark hit rate). Covered are the items
    whose image has any human entry; a covered item without its own entry is an empty segmentation
    / a miss, as CheXlocalize counts it."""
    images = {k[0] for k in human}
    covered = np.array([test.image_ids[i] in images for i in idx], bool)
    masks_given = any(np.ndim(v) == 2 and np.asarray(v).dtype == bool for v in human.values())
    points_given = any(np.ndim(v) == 2 and np.asarray(v).dtype != bool for v in human.values())
    iou = np.full(len(idx), np.nan)
    hit = np.full(len(idx), np.nan)
    for k, i in enumerate(idx):
        if not covered[k]:
            continue
        truth = test.truth[int(i)]
        entry = human.get((test.image_ids[int(i)], test.findings[int(i)]))
        arr = None if entry is None else np.asarray(entry)
        if masks_given:
            mask = arr if arr is not None and arr.dtype == bool else np.zeros(truth.shape, bool)
            if mask.shape != truth.shape:
                raise ValueError(
                    f"human mask of {test.image_ids[int(i)]} / {test.findings[int(i)]} is {mask.shape}, "
                    f"its truth {truth.shape}: give the human segmentation at the image's size"
                )
            iou[k] = mask_iou(mask, truth)
        if points_given and truth.any():
            pts = arr if arr is not None and arr.dtype != bool else np.zeros((0, 2))
            rows = np.clip(pts[:, 1].astype(int), 0, truth.shape[0] - 1)
            cols = np.clip(pts[:, 0].astype(int), 0, truth.shape[1] - 1)
            hit[k] = float(truth[rows, cols].any()) if len(pts) else 0.0
    return covered, {"miou": iou if masks_given else None, "hit_rate": hit if points_given else None}


def localisation_block(
    test: MapSet,
    control: MapSet,
    val: MapSet | None = None,
    control_val: MapSet | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    tolerance: float = 0.0,
    iobb_thresholds: Sequence[float] = IOBB_THRESHOLDS,
    human: Mapping[tuple[str, str], np.ndarray] | None = None,
    progress: bool = False,
) -> dict | None:
    """Every localisation figure of ``test``'s maps with CIs, beside ``control``'s (module doc).

    ``val`` / ``control_val``: the same method's / the control's maps on the val split, for the
    tuned thresholds and probability cutoffs (``miou_tuned`` is null without them). ``human``: see
    :func:`_human_scores`. Returns None when no test item has known truth."""
    _check_aligned(test, control, "control")
    idx = test.scored()
    if not len(idx):
        return None
    findings = sorted({test.findings[i] for i in idx})
    thresholds, cutoffs = _tune(val, findings, progress)
    c_thresholds, c_cutoffs = _tune(control_val, findings, progress)
    kw = {"tolerance": tolerance, "iobb_thresholds": iobb_thresholds, "progress": progress}
    columns = {f"m:{k}": v for k, v in item_scores(test, idx, thresholds, cutoffs, **kw).items()}
    columns.update({f"c:{k}": v for k, v in item_scores(control, idx, c_thresholds, c_cutoffs, **kw).items()})
    item_findings = np.array([test.findings[i] for i in idx], object)
    subsets = {"all": np.ones(len(idx), bool)}
    subsets.update({f"f:{f}": item_findings == f for f in findings})
    covered = None
    human_cols: dict[str, np.ndarray | None] = {}
    if human:
        covered, human_cols = _human_scores(test, idx, human)
        subsets["human"] = covered
        columns.update({f"h:{k}": v for k, v in human_cols.items() if v is not None})
    groups = [test.groups[i] for i in idx]
    boot = _Bootstrap(columns, subsets, groups, n_boot, seed)
    positive = np.array([bool(test.truth[i].any()) for i in idx])
    unit = bootstrap_unit(groups, len(groups))

    per_finding = {}
    control_per_finding = {}
    for f in findings:
        sel = subsets[f"f:{f}"]
        per_finding[f] = {
            **_figures(boot, f"f:{f}", "m:", iobb_thresholds),
            "n_items": int(sel.sum()),
            "n_positive": int((sel & positive).sum()),
        }
        control_per_finding[f] = _figures(boot, f"f:{f}", "c:", iobb_thresholds)
    versus: dict[str, Any] = {m: _versus(boot, m) for m in METRICS}
    versus["iobb_accuracy"] = {_iobb_key(t): _versus(boot, f"iobb@{_iobb_key(t)}") for t in iobb_thresholds}

    out: dict[str, Any] = {
        "protocol": protocol_text(tolerance, iobb_thresholds, n_boot, unit),
        "n_items": int(len(idx)),
        "n_positive": int(positive.sum()),
        "n_groups": count_clusters(groups, len(groups)),
        "bootstrap": {"n_boot": int(n_boot), "unit": unit, "level": LEVEL, "seed": int(seed)},
        "tolerance_px": float(tolerance),
        **_figures(boot, "all", "m:", iobb_thresholds),
        "thresholds": thresholds,
        "probability_cutoffs": cutoffs,
        "per_finding": per_finding,
        "control": {
            **_figures(boot, "all", "c:", iobb_thresholds),
            "method": "random",
            "thresholds": c_thresholds,
            "probability_cutoffs": c_cutoffs,
            "per_finding": control_per_finding,
        },
        "versus_control": versus,
    }
    if human and covered is not None:
        out["human"] = _human_block(boot, human_cols)
        out["human_items"] = int(covered.sum())
    return out


def _human_block(boot: _Bootstrap, human_cols: Mapping[str, np.ndarray | None]) -> dict[str, Any]:
    """CheXlocalize's percentage decrease of each method figure from the human benchmark's, paired
    replicates, on the items the human benchmark covers: mIoU against the human segmentations,
    hit rate against the humans' most representative points."""
    pairs = [("hit_rate", "hit_rate"), ("miou_otsu", "miou"), ("miou_tuned", "miou")]
    out: dict[str, Any] = {}
    for metric, human_metric in pairs:
        if human_cols.get(human_metric) is None:
            continue
        h_val, m_val = boot.value("human", f"h:{human_metric}"), boot.value("human", f"m:{metric}")
        h_rep, m_rep = boot.replicates("human", f"h:{human_metric}"), boot.replicates("human", f"m:{metric}")
        out[metric] = {
            "human": _ci(h_val, h_rep),
            "method": _ci(m_val, m_rep),
            "percentage_decrease": _ci(percentage_decrease(h_val, m_val), percentage_decrease(h_rep, m_rep)),
        }
    return out

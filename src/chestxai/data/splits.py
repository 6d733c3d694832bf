"""Train/val/test splits, balanced subsets and class weights: pure functions returning row indices.

Why patient-grouped: NIH has ~3.6 images per patient; with images of one patient on both sides of
a split, a model recognises the patient, not the finding, and test AUC is inflated. Every split
here keeps each patient (``groups``) in exactly one part.

Why the source's split first: published numbers (MedMNIST, CheXpert valid, NIH test list) are
comparable only on the official split, so when a table carries one it is honoured and only the
missing parts (e.g. NIH has no official val) are carved out of ``train``.

Stratification: the class for binary/multiclass; for multi-label the *rarest* positive label of
each row (rows without a positive form their own stratum), which spreads every label's positives
across the splits better than any single label would. NaN labels count as negative here only.

Fixed counts (``per_class``): the seeds' "balanced 5,200 / 1,000 / 1,000" or "60 images of every
class in val and test" are *numbers of images per class*, not fractions. :func:`make_splits` then
draws whole patients, in a seeded random order, until each class has its count (exact when every
patient has one image; a few short when patients with several images cannot fit, logged). Rows
with an unknown (NaN) label are never drawn for a counted split. Without a count for ``train`` it
keeps everything left; with one, the rest of the pool is unused.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def stratify_key(labels: np.ndarray, task: str = "multilabel") -> np.ndarray:
    """One integer stratum per row (see module docstring); -1 = multi-label row with no positive."""
    labels = np.nan_to_num(np.asarray(labels, dtype=np.float32), nan=0.0)
    if labels.ndim == 1:
        labels = labels[:, None]
    if task == "binary" or labels.shape[1] == 1:
        return (labels[:, 0] > 0.5).astype(np.int64)
    if task == "multiclass":
        return np.argmax(labels, axis=1).astype(np.int64)
    positives = labels > 0.5
    freq = positives.sum(axis=0)
    rank = np.where(positives, freq[None, :], np.inf)  # rarest positive label wins
    key = np.argmin(rank, axis=1).astype(np.int64)
    key[~positives.any(axis=1)] = -1
    return key


def _grouped_holdout(
    y: np.ndarray, groups: np.ndarray, rows: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (rest, held out ~``fraction``) with no group on both sides, stratified.

    Uses ``StratifiedGroupKFold`` with ``round(1/fraction)`` folds and holds out the first fold, so
    the fraction is approximate (1/k, and groups are indivisible). When a stratum is too small for
    the folds (small datasets, rare classes) a fold could miss it entirely - a validation split
    without a class has no AUC to select on - so :func:`_small_stratified_holdout` takes over.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if fraction <= 0 or len(rows) == 0:
        return rows, rows[:0]
    n_groups = len(np.unique(groups[rows]))
    k = max(2, int(round(1.0 / fraction)))
    if n_groups < k:
        raise ValueError(
            f"cannot hold out {fraction:.0%} of {len(rows)} rows: only {n_groups} patient groups "
            f"(need at least {k}); lower the fraction or provide more data"
        )
    counts = np.bincount(np.unique(y[rows], return_inverse=True)[1])
    if counts.min() >= k:
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        rest, held = next(cv.split(rows, y[rows], groups[rows]))
        return np.sort(rows[rest]), np.sort(rows[held])
    log.info("a stratum has fewer than %d rows; holding out %.0f%% by patient per stratum", k, fraction * 100)
    return _small_stratified_holdout(y, groups, rows, fraction, seed)


def _small_stratified_holdout(
    y: np.ndarray, groups: np.ndarray, rows: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ~``fraction`` of each stratum's patients, and at least one patient of every stratum
    that has two or more (one always stays in the rest): each class reaches the held-out part
    when it can without leaving it.

    A patient belongs to the stratum most of its rows have (ties: the lowest key).
    """
    rng = np.random.default_rng(seed)
    g, g_index = np.unique(groups[rows], return_inverse=True)
    s, s_index = np.unique(y[rows], return_inverse=True)
    votes = np.zeros((len(g), len(s)), np.int64)
    np.add.at(votes, (g_index, s_index), 1)
    stratum = votes.argmax(axis=1)
    held_groups = []
    for k in range(len(s)):
        members = np.flatnonzero(stratum == k)
        if len(members) < 2:
            continue
        take = int(np.clip(round(fraction * len(members)), 1, len(members) - 1))
        held_groups.append(rng.permutation(members)[:take])
    if not held_groups:  # every stratum is a single patient: hold out patients regardless of stratum
        held_groups.append(rng.permutation(len(g))[: max(1, int(round(fraction * len(g))))])
    held = np.isin(g_index, np.concatenate(held_groups))
    return np.sort(rows[~held]), np.sort(rows[held])


def make_splits(
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    task: str = "multilabel",
    official: np.ndarray | None = None,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    per_class: dict[str, int] | None = None,
    count_labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Row indices ``{"train", "val", "test"}``, patient-grouped and stratified, seeded.

    ``groups``: patient id per row (``None``: every row its own group). ``official``: the source's
    split per row (``"train"/"val"/"test"`` or ``""``); parts it defines are kept as they are, the
    missing ``val``/``test`` are carved from its ``train`` (rows with an empty split join ``train``).
    ``val``/``test`` are fractions of all rows (approximate: whole patients, ``1/k`` folds).
    ``per_class``: ``{split: images of every class}`` for the splits drawn by count instead (see
    the module docstring; binary or multi-class only), over ``count_labels`` (default ``labels``: the
    columns a run trains on may be fewer than the ones stratified on); ``class_names`` for errors.
    """
    labels = np.asarray(labels)
    n = len(labels)
    groups = np.arange(n) if groups is None else np.asarray(groups).astype(str)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} rows")
    y = stratify_key(labels, task)
    out: dict[str, np.ndarray] = {}
    pool = np.arange(n)
    if official is not None:
        official = pd.Series(np.asarray(official, dtype=object)).fillna("").astype(str).str.strip().to_numpy()
        unknown = sorted(set(official) - set(SPLITS) - {""})
        if unknown:
            raise ValueError(f"official split has values {unknown}; expected train/val/test or empty")
        defined = {s: np.flatnonzero(official == s) for s in SPLITS}
        if any(len(v) for v in defined.values()):
            out = {s: v for s, v in defined.items() if len(v) and s != "train"}
            pool = np.flatnonzero(~np.isin(official, list(out)))
            _warn_shared_patients(groups, out, pool)
    counts = dict(per_class or {})
    if counts:
        counted = labels if count_labels is None else count_labels
        classes, known, names = _count_classes(counted, task, class_names)
        for name, offset in (("test", 0), ("val", 1)):
            if name in counts:
                # an official part is subsampled; a missing one is drawn from the pool
                source = out.get(name, pool)
                picked = _draw_per_class(
                    classes, known, groups, source, counts[name], seed + offset, name, names
                )
                if name not in out:  # the chosen patients leave the pool whole (unlabelled rows too)
                    pool = pool[~np.isin(groups[pool], groups[picked])]
                out[name] = picked
    # fractions are of all rows; convert to fractions of the rows still in the pool
    for name, fraction, offset in (("test", test, 0), ("val", val, 1)):
        if name not in out:
            share = fraction * n / max(len(pool), 1)
            pool, out[name] = _grouped_holdout(y, groups, pool, min(share, 0.9), seed + offset)
    if "train" in counts:
        picked = _draw_per_class(classes, known, groups, pool, counts["train"], seed + 2, "train", names)
        log.info(
            "data.per_class: %d of %d remaining rows left out of train", len(pool) - len(picked), len(pool)
        )
        pool = picked
    out["train"] = np.sort(pool)
    return {s: np.asarray(out[s], dtype=np.int64) for s in SPLITS}


def _count_classes(
    labels: np.ndarray, task: str, class_names: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class per row, whether the row's label is known, and the class names (for messages)."""
    labels = np.asarray(labels, dtype=np.float32)
    labels = labels[:, None] if labels.ndim == 1 else labels
    width = labels.shape[1]
    if task == "multilabel" and width != 1:
        raise ValueError(
            f"data.per_class needs a binary or multi-class task; this one is multi-label with {width} labels "
            f"(select one with data.labels, or use val_fraction/test_fraction)"
        )
    known = ~np.isnan(labels).any(axis=1)
    if task == "multiclass":
        known &= labels.sum(axis=1) > 0  # an all-zero one-hot row has no class
        return np.argmax(np.nan_to_num(labels), axis=1), known, list(class_names or range(width))
    name = class_names[0] if class_names else "positive"
    return (np.nan_to_num(labels[:, 0]) > 0.5).astype(np.int64), known, [f"not {name}", str(name)]


def _draw_per_class(
    classes: np.ndarray,
    known: np.ndarray,
    groups: np.ndarray,
    rows: np.ndarray,
    n: int,
    seed: int,
    split: str,
    names: list,
) -> np.ndarray:
    """Whole patients of ``rows`` (labels known), seeded order, until every class has ``n`` images.

    A patient joins only if none of its classes would pass ``n``; too few images of a class is an
    error naming it, a count missed because patients come whole is a warning with the counts.
    """
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[known[rows]]
    k = len(names)
    have = np.bincount(classes[rows], minlength=k)
    short = {str(names[c]): int(have[c]) for c in range(k) if have[c] < n}
    if short:
        raise ValueError(
            f"data.per_class.{split}={n}: too few images of {short} to draw from "
            f"(labelled images left per class: {dict(zip(map(str, names), have.tolist(), strict=True))}); "
            f"lower data.per_class.{split}"
        )
    g_names, g_index = np.unique(groups[rows], return_inverse=True)
    per_group = np.zeros((len(g_names), k), np.int64)
    np.add.at(per_group, (g_index, classes[rows]), 1)
    need = np.full(k, n, np.int64)
    chosen = np.zeros(len(g_names), bool)
    for g in np.random.default_rng(seed).permutation(len(g_names)):
        if (per_group[g] <= need).all():
            chosen[g] = True
            need -= per_group[g]
            if not need.any():
                break
    if need.any():
        log.warning(
            "data.per_class.%s=%d: whole patients reach only %s images per class",
            split, n, dict(zip(map(str, names), (n - need).tolist(), strict=True)),
        )  # fmt: skip
    return np.sort(rows[chosen[g_index]])


def _warn_shared_patients(groups: np.ndarray, fixed: dict[str, np.ndarray], pool: np.ndarray) -> None:
    parts = {**fixed, "train": pool}
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = np.intersect1d(groups[parts[a]], groups[parts[b]])
            if len(shared):
                log.warning("official split puts %d patient(s) in both %s and %s", len(shared), a, b)


def splits_from_cache(
    cache: Any,
    *,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    per_class: dict[str, int] | None = None,
    labels: np.ndarray | None = None,
    label_names: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`make_splits` over a :class:`~chestxai.data.cache.PreparedCache` (its split column first).

    ``labels``/``label_names``: the columns the run trains on (``data.labels``), which ``per_class``
    counts (default the cache's own); the fractions stay stratified on all the cache's labels.
    """
    frame = cache.frame
    official = frame["split"].astype(str).to_numpy() if "split" in frame else None
    groups = frame["patient_id"].astype(str).to_numpy()
    groups = np.where(groups == "", frame["image_id"].astype(str).to_numpy(), groups)  # no id: own group
    names = cache.label_names if label_names is None else label_names
    return make_splits(
        cache.labels, groups, task=cache.task, official=official, val=val, test=test, seed=seed,
        per_class=per_class, count_labels=labels, class_names=names,
    )  # fmt: skip


# --- balancing ---------------------------------------------------------------------------------
def balanced_subset(
    classes: np.ndarray, rows: np.ndarray | None = None, *, per_class: int | None = None, seed: int = 0
) -> np.ndarray:
    """Rows with the same count per class: undersample to the rarest class, or exactly ``per_class``.

    ``classes``: integer class per row (all rows; e.g. :func:`stratify_key`). ``rows``: the rows to
    draw from (default all). Use ``per_class`` for fixed-size balanced val/test sets.
    """
    classes = np.asarray(classes)
    rows = np.arange(len(classes)) if rows is None else np.asarray(rows, dtype=np.int64)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(classes[rows], return_counts=True)
    if not len(values):
        return rows[:0]
    n = int(counts.min()) if per_class is None else int(per_class)
    short = {int(v): int(c) for v, c in zip(values, counts, strict=True) if c < n}
    if short:
        raise ValueError(f"per_class={n} but classes {short} have fewer rows; lower per_class")
    picked = [rng.choice(rows[classes[rows] == v], size=n, replace=False) for v in values]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def class_weights(classes: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Inverse-frequency weight per class, scaled so the weighted mean over rows is 1.

    ``n / (k * count)`` (scikit-learn's "balanced"); classes absent from ``classes`` get 0.
    """
    classes = np.asarray(classes, dtype=np.int64)
    k = int(n_classes if n_classes is not None else classes.max() + 1)
    counts = np.bincount(classes, minlength=k).astype(np.float64)
    w = np.zeros(k)
    present = counts > 0
    w[present] = len(classes) / (present.sum() * counts[present])
    return w.astype(np.float32)


def pos_weight(labels: np.ndarray) -> np.ndarray:
    """Per label ``negatives / positives`` ignoring NaN (for ``BCEWithLogitsLoss(pos_weight=...)``).

    A label without positives gets 1.0 (no reweighting rather than infinity).
    """
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim == 1:
        labels = labels[:, None]
    pos = np.nansum(labels == 1, axis=0).astype(np.float64)
    neg = np.nansum(labels == 0, axis=0).astype(np.float64)
    return np.where(pos > 0, neg / np.maximum(pos, 1), 1.0).astype(np.float32)


def sample_weights(classes: np.ndarray) -> np.ndarray:
    """Per-row weight = its class's inverse frequency: each class is drawn equally often."""
    classes = np.asarray(classes, dtype=np.int64)
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    return (1.0 / counts[inverse]).astype(np.float64)

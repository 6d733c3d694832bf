"""Site probe: does the model's pooled feature vector tell where an image came from?

A linear probe (standardised features, scikit-learn logistic regression) is fitted on the
model's pooled features (the vector its head reads: :meth:`ChestClassifier.pool`) to predict the
dataset (internal vs external cache) or the view (PA vs AP within one cache). Out-of-fold
probabilities from a patient-grouped, stratified K-fold give an honest AUROC, with a
patient-bootstrap CI. Zech et al. (2018) predicted the hospital from a pneumonia model's features
almost perfectly, and DeGrave et al. (2021) showed COVID-19 models reading the source instead of
the lungs: an AUROC of :data:`WARN_AUROC` or more is a warning that the model encodes the site,
so its external AUROC may rest on shortcuts. A site that the features *cannot* tell apart is no
proof of the opposite (the probe is linear and sees only the pooled vector).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from chestxai.metrics.bootstrap import count_clusters, percentile_interval, resample_weights
from chestxai.metrics.ranking import RankedScores

log = logging.getLogger(__name__)

#: probe AUROC at or above which the report warns that the model encodes the site / view
WARN_AUROC = 0.9
FOLDS = 5
PROBES = ("dataset", "view")
WARNING = (
    "the model's pooled features predict the {what} (probe AUROC {auc:.3f} >= {warn}): it encodes "
    "the {what}, so its scores may use {what} cues rather than the finding (Zech et al. 2018; DeGrave et al. 2021)"
)


def probe_auroc(
    features: np.ndarray,
    target: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int = FOLDS,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
    C: float = 1.0,  # noqa: N803  (scikit-learn's name)
) -> dict[str, Any]:
    """Out-of-fold AUROC of a logistic-regression probe predicting 0/1 ``target`` from ``features``.

    Folds are ``StratifiedGroupKFold`` over ``groups`` (patients: no patient in both the fitting
    and the scored fold), at most ``folds`` and no more than the smaller class has patients.
    The CI resamples patients of the out-of-fold scores.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target).astype(int)
    groups = np.asarray(groups).astype(str)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(groups):
        raise ValueError(
            f"features {x.shape}, target {y.shape} and groups {groups.shape} must align row for row"
        )
    n_groups = [len(np.unique(groups[y == c])) for c in (0, 1)]
    k = min(folds, *n_groups)
    if k < 2:
        raise ValueError(
            f"the site probe needs at least 2 patients in each class, got {n_groups[0]} and {n_groups[1]}"
        )
    oof = np.full(len(y), np.nan)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fit, score in splitter.split(x, y, groups):
        if len(np.unique(y[fit])) < 2:  # a fold without both classes: its rows stay unscored
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        model.fit(x[fit], y[fit])
        oof[score] = model.predict_proba(x[score])[:, 1]
    scored = ~np.isnan(oof)
    ranked = RankedScores(oof[scored], y[scored].astype(np.float64))
    point = float(ranked.auc(np.ones((1, int(scored.sum()))))[0])
    samples = np.concatenate(
        [ranked.auc(w) for w in resample_weights(int(scored.sum()), groups[scored], n_boot, seed)]
    )
    lo, hi = percentile_interval(samples, level)
    return {
        "roc_auc": {"value": point, "ci": [lo, hi]},
        "n": int(scored.sum()),
        "n_per_class": [int((y[scored] == c).sum()) for c in (0, 1)],
        "n_patients": count_clusters(groups[scored], int(scored.sum())),
        "folds": k,
        "cv": "StratifiedGroupKFold by patient (shuffled, seeded); out-of-fold probabilities",
        "model": f"StandardScaler + LogisticRegression(C={C}, max_iter=2000)",
        "seed": seed,
        "n_boot": n_boot,
        "level": level,
    }


def verdict(result: dict[str, Any], what: str, warn: float = WARN_AUROC) -> dict[str, Any]:
    """Add ``warn_at`` and ``warning`` (text, or None) to a :func:`probe_auroc` result."""
    auc = result["roc_auc"]["value"]
    flagged = auc is not None and np.isfinite(auc) and auc >= warn
    return {
        **result,
        "warn_at": warn,
        "warning": WARNING.format(what=what, auc=auc, warn=warn) if flagged else None,
    }


def pooled_features(
    trained, cache, rows: np.ndarray, *, batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """``N x C`` pooled features (what the head reads) of cached images, with the run's preprocessing."""
    import torch
    from tqdm.auto import tqdm

    from chestxai.models.preprocess import to_input

    model = trained.model  # an ensemble has no one feature space: refused by TrainedRun
    model.eval()
    out = []
    starts = range(0, len(rows), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="features", disable=not progress, leave=False):
            batch = np.asarray(cache.images[rows[start : start + batch_size]])
            x = to_input(batch, trained.preprocess).to(trained.device)
            out.append(model.pool(model.features(x)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def dataset_probe(trained, sets, *, folds: int = FOLDS, seed: int = 0, n_boot: int = 1000,
                  level: float = 0.95, batch_size: int = 256, progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Probe internal (0) vs external (1) images of :class:`~chestxai.evaluation.site_shift.SiteSets`."""
    feats, target, groups = [], [], []
    for label, cache, rows in (
        (0, sets.internal_cache, sets.internal_rows),
        (1, sets.external_cache, sets.external_rows),
    ):
        feats.append(pooled_features(trained, cache, rows, batch_size=batch_size, progress=progress))
        target.append(np.full(len(rows), label))
        pid = cache.frame["patient_id"].astype(str).to_numpy()[rows]
        groups.append(np.char.add(f"{label}:", pid.astype(str)))  # one patient id never spans two sites
    result = probe_auroc(np.concatenate(feats), np.concatenate(target), np.concatenate(groups),
                         folds=folds, seed=seed, n_boot=n_boot, level=level)  # fmt: skip
    result = {
        "probe": "dataset",
        "classes": [sets.internal_cache.path.name, sets.external_cache.path.name],
        **result,
    }
    return verdict(result, "dataset")


def view_probe(trained, cache, rows: np.ndarray, *, folds: int = FOLDS, seed: int = 0, n_boot: int = 1000,
               level: float = 0.95, batch_size: int = 256, progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Probe the two most frequent known views (e.g. PA vs AP) among ``rows`` of one cache."""
    import pandas as pd

    if "view" not in cache.frame.columns:
        raise ValueError(f"--probe view: the cache {cache.path} has no view column; use --probe dataset")
    views = cache.frame["view"].to_numpy(object)[rows]
    known = (
        pd.Series(views).notna().to_numpy()
        & ~pd.Series(views)
        .astype(str)
        .str.strip()
        .str.lower()
        .isin({"", "nan", "none", "unknown"})
        .to_numpy()
    )
    counts = pd.Series(views[known]).astype(str).value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"--probe view: the cache {cache.path} has {len(counts)} known view(s) ({dict(counts)}) among the "
            f"probed images; a view probe needs two"
        )
    a, b = counts.index[:2]
    keep = known & np.isin(pd.Series(views).astype(str).to_numpy(), [a, b])
    sub = rows[keep]
    feats = pooled_features(trained, cache, sub, batch_size=batch_size, progress=progress)
    target = (pd.Series(views[keep]).astype(str).to_numpy() == b).astype(int)
    groups = cache.frame["patient_id"].astype(str).to_numpy()[sub]
    result = probe_auroc(feats, target, groups, folds=folds, seed=seed, n_boot=n_boot, level=level)
    dropped = {str(k): int(v) for k, v in counts.iloc[2:].items()}
    result = {"probe": "view", "classes": [str(a), str(b)], "cache": str(cache.path),
              "other_views_dropped": dropped, "unknown_view_dropped": int((~known).sum()), **result}  # fmt: skip
    return verdict(result, "view")

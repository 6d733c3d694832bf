"""Bootstrap confidence intervals that resample patients, not images.

Chest X-ray test sets hold several images per patient (follow-ups, views). Their errors are
correlated, so resampling images as if independent makes intervals too narrow. When patient ids
exist we draw *patients* with replacement and keep all of each drawn patient's images together
(the clustered, or block, bootstrap); each image then enters a replicate as often as its patient
was drawn. Without patient ids every image is its own cluster (the ordinary bootstrap).

A replicate is represented by its integer multiplicities (``B x n`` weights), which the metric
kernels in :mod:`chestxai.metrics.ranking` consume directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from chestxai.metrics.classification import METRICS, counts_metrics, weighted_mean
from chestxai.metrics.decisions import decide
from chestxai.metrics.ranking import RankedScores
from chestxai.metrics.task_rules import check_arrays, valid_mask

#: Upper bound on weight-matrix entries held at once (replicates x pooled pairs), ~16 MB of float64.
_MAX_ENTRIES = 2_000_000


#: Patient-id text that means "no id" (what ``astype(str)`` makes of NaN / None / pandas NA, and
#: blanks). Compared after stripping and lower-casing.
MISSING_IDS = frozenset({"", "nan", "none", "<na>", "nat", "null"})


def missing_ids(groups: np.ndarray | list) -> np.ndarray:
    """Bool per image: its patient id is missing (None, NaN, blank, or the text ``"nan"``...)."""
    values = pd.Series(np.asarray(groups, dtype=object).ravel())
    return (values.isna() | values.astype(str).str.strip().str.lower().isin(MISSING_IDS)).to_numpy()


def cluster_codes(groups: np.ndarray | list | None, n: int) -> np.ndarray:
    """Integer cluster code per image, ``0..k-1`` with every code used by at least one image.

    Images sharing a patient id share a code. An image whose id is missing (see
    :func:`missing_ids`) is its own cluster: unknown ids are never merged with each other nor with
    a real patient, and no code is left without images (an empty cluster would still be drawn by
    the bootstrap, shrinking replicates). Without ids (``None``) every image is its own cluster.
    """
    if groups is None:
        return np.arange(n)
    values = np.asarray(groups, dtype=object).ravel()
    if len(values) != n:
        raise ValueError(f"{len(values)} patient ids for {n} images")
    missing = missing_ids(values)
    codes = np.empty(n, dtype=np.int64)
    known = pd.Series(values[~missing]).astype(str).str.strip()
    codes[~missing] = pd.factorize(known)[0]
    n_known = int(codes[~missing].max()) + 1 if (~missing).any() else 0
    codes[missing] = n_known + np.arange(int(missing.sum()))
    return codes


def count_clusters(groups: np.ndarray | list | None, n: int) -> int:
    """How many independent units the bootstrap resamples: patients, plus one per image without an id."""
    codes = cluster_codes(groups, n)
    return int(codes.max()) + 1 if len(codes) else 0


def has_patient_ids(groups: np.ndarray | list | None) -> bool:
    """Whether any image has a patient id (see :func:`bootstrap_unit` for what the bootstrap resamples)."""
    return groups is not None and not bool(missing_ids(groups).all())


def bootstrap_unit(groups: np.ndarray | list | None, n: int) -> str:
    """``"patient"`` when patient ids group images (some patient has two or more), else ``"image"``.

    A dataset without patient ids, or whose ids are one per image (MedMNIST and a manifest without a
    patient column use the image id as a stand-in), resamples images: calling that "resampling
    patients", or writing "624 images of 624 patients", would claim a grouping nobody recorded."""
    return "patient" if has_patient_ids(groups) and count_clusters(groups, n) < n else "image"


#: What a replicate resamples, as metrics.json and the reports say it.
UNIT_NOTES = {
    "patient": "replicates resample patients, each with all of its images",
    "image": "replicates resample images: there are no patient ids that group images (absent, or one id per "
    "image), so nothing is known about patients",
}

#: Fewer positives (or negatives) than this in a class: its interval is flagged as small-sample.
SMALL_N = 10
SMALL_N_NOTE = (
    f"classes with fewer than {SMALL_N} positives or negatives: their bootstrap intervals rest on a handful "
    "of cases (few distinct resampled values) and are not reliable 95% intervals; read them as rough"
)


def small_sample_classes(per_class: dict[str, dict], min_count: int = SMALL_N) -> dict[str, dict[str, int]]:
    """``{class: {"n_pos", "n_neg"}}`` for the classes with fewer than ``min_count`` positives or
    negatives among their known targets (entries of ``classification_metrics()["per_class"]``).

    A percentile bootstrap over 3 positives has only a handful of distinct resampled AUCs and
    sensitivities: the interval is printed like any other but is not a 95% interval in any useful
    sense, so ``metrics.json`` and the report flag it."""
    out = {}
    for name, entry in per_class.items():
        n, n_pos = int(entry.get("n", 0)), int(entry.get("n_pos", 0))
        if n_pos < min_count or n - n_pos < min_count:
            out[name] = {"n_pos": n_pos, "n_neg": n - n_pos}
    return out


def resample_weights(
    n: int,
    groups: np.ndarray | list | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    chunk: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield ``b x n`` float weight matrices (``b <= chunk``) for ``n_boot`` replicates in total.

    Row ``r`` says how many times each image is in replicate ``r``. With ``groups``, all images
    of a cluster share one multiplicity: ``k`` clusters drawn with replacement out of ``k``.
    """
    codes = cluster_codes(groups, n)
    k = int(codes.max()) + 1 if n else 0  # codes are dense: every cluster holds an image
    rng = np.random.default_rng(seed)
    chunk = n_boot if chunk is None else max(1, int(chunk))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        if k == 0:
            yield np.zeros((b, 0))
        else:
            drawn = rng.multinomial(k, np.full(k, 1.0 / k), size=b)  # b x k cluster counts
            yield drawn[:, codes].astype(np.float64)
        done += b


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples, ignoring replicates where the metric is NaN."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(samples, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _chunk_size(n_entries: int, n_boot: int) -> int:
    return max(1, min(n_boot, _MAX_ENTRIES // max(n_entries, 1)))


def bootstrap_samples(
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    thresholds: np.ndarray | None = None,
    groups: np.ndarray | list | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> dict:
    """Bootstrap replicates of every metric of :func:`~chestxai.metrics.classification.classification_metrics`.

    Returns the same nesting (``per_class``/``macro``/``micro``/``weighted``/``overall``) with an
    ``n_boot`` array in place of each number. Replicates where a metric is undefined are NaN.
    ``weights`` (``B x n``) replaces the random replicates (a row of ones reproduces the point
    estimates, which is how the tests tie this kernel to scikit-learn).
    """
    probs, targets = check_arrays(probs, targets, task)
    n, n_cls = probs.shape
    pred = decide(probs, task, thresholds).astype(np.float64)
    known = valid_mask(targets, task)
    y0 = np.nan_to_num(targets)
    ranked = [RankedScores(probs[known[:, c], c], y0[known[:, c], c]) for c in range(n_cls)]
    pooled_rows = np.nonzero(known)[0]
    pooled = RankedScores(probs[known], y0[known])
    # indicator vectors per class: tp, fp, tn, fn for each image (0 where the target is unknown)
    k = known.astype(np.float64)
    ind = np.stack(
        [k * y0 * pred, k * (1 - y0) * pred, k * (1 - y0) * (1 - pred), k * y0 * (1 - pred)]
    )  # 4 x n x L
    correct = (probs.argmax(1) == y0.argmax(1)).astype(np.float64) * known.all(axis=1)
    all_known = (~np.isnan(targets)).all(axis=1).astype(np.float64)
    exact = (pred == y0).all(axis=1).astype(np.float64) * all_known

    if weights is not None:
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        n_boot = len(weights)
        chunks = iter([weights])
    else:
        chunk = _chunk_size(len(pooled_rows) + n * n_cls, n_boot)
        chunks = resample_weights(n, groups, n_boot, seed, chunk=chunk)
    per = {m: np.empty((n_boot, n_cls)) for m in METRICS}
    npos = np.empty((n_boot, n_cls))
    micro = {m: np.empty(n_boot) for m in METRICS}
    overall = {"accuracy": np.empty(n_boot), "exact_match": np.empty(n_boot)}
    start = 0
    for w in chunks:
        sl = slice(start, start + len(w))
        counts = np.einsum("bn,knl->kbl", w, ind)  # 4 x b x L
        for name, vals in counts_metrics(*counts).items():
            per[name][sl] = vals
        npos[sl] = counts[0] + counts[3]
        for c in range(n_cls):
            wc = w[:, known[:, c]]
            per["roc_auc"][sl, c] = ranked[c].auc(wc)
            per["average_precision"][sl, c] = ranked[c].average_precision(wc)
        for name, vals in counts_metrics(*counts.sum(axis=2)).items():
            micro[name][sl] = vals
        wp = w[:, pooled_rows]
        micro["roc_auc"][sl] = pooled.auc(wp)
        micro["average_precision"][sl] = pooled.average_precision(wp)
        with np.errstate(invalid="ignore", divide="ignore"):
            overall["accuracy"][sl] = (w @ correct) / (w @ known.all(axis=1))
            overall["exact_match"][sl] = (w @ exact) / (w @ all_known)
        start += len(w)

    out: dict = {
        "per_class": {name: {m: per[m][:, c] for m in METRICS} for c, name in enumerate(label_names)}
    }
    out["macro"] = {m: weighted_mean(per[m], 1.0, axis=1) for m in METRICS}
    out["weighted"] = {m: weighted_mean(per[m], npos, axis=1) for m in METRICS}
    out["micro"] = micro
    if task == "multiclass":
        out["overall"] = {"accuracy": overall["accuracy"], "balanced_accuracy": out["macro"]["recall"]}
    elif task == "multilabel":
        out["overall"] = {"exact_match": overall["exact_match"]}
    else:
        out["overall"] = {}
    return out


def intervals(samples: dict, level: float = 0.95) -> dict:
    """Map every sample array in a nested dict to its percentile interval ``(lo, hi)``."""
    return {
        k: intervals(v, level) if isinstance(v, dict) else percentile_interval(v, level)
        for k, v in samples.items()
    }

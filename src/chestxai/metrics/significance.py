"""Is run B's AUC different from run A's on the same test images? DeLong per class, and a
paired (patient-clustered) bootstrap for the macro-averaged AUC.

DeLong (:mod:`chestxai.metrics.delong`) is exact in its assumptions and cheap but treats images
as independent and handles one AUC at a time. The paired bootstrap resamples patients once per
replicate and scores *both* runs on the same replicate, so the correlation between the runs and
between a patient's images is kept; it also tests averages over classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from chestxai.metrics.bootstrap import resample_weights
from chestxai.metrics.classification import weighted_mean
from chestxai.metrics.delong import DelongResult, delong_test
from chestxai.metrics.ranking import RankedScores
from chestxai.metrics.task_rules import check_arrays, valid_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairedBootstrapResult:
    diff: float  # macro AUC(a) - macro AUC(b) on the full sample
    ci: tuple[float, float]
    p_value: float  # two-sided, from the replicates on either side of zero, (1 + k) / (1 + n)
    n_boot: int


def holm_adjust(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), NaN entries left out of the family.

    With the ``m`` finite p-values sorted ascending, ``p_(i)`` becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))`` (Holm 1979); reject where the adjusted p < alpha.
    Per-class DeLong tests of one run against another are such a family: with 8 classes, one raw
    p below 0.05 is expected by chance far more often than 5% of the time."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def per_class_delong(
    targets: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, task: str, label_names: list[str]
) -> dict[str, DelongResult | None]:
    """DeLong test per class (one-vs-rest); ``None`` where a class has too few positives/negatives."""
    probs_a, targets = check_arrays(probs_a, targets, task)
    probs_b, _ = check_arrays(probs_b, targets, task)
    known = valid_mask(targets, task)
    out: dict[str, DelongResult | None] = {}
    for c, name in enumerate(label_names):
        m = known[:, c]
        try:
            out[name] = delong_test(targets[m, c], probs_a[m, c], probs_b[m, c])
        except ValueError as exc:
            log.warning("no DeLong test for %r: %s", name, exc)
            out[name] = None
    return out


def _macro_auc(ranked: list[RankedScores], known: np.ndarray, w: np.ndarray) -> np.ndarray:
    aucs = np.stack([r.auc(w[:, known[:, c]]) for c, r in enumerate(ranked)], axis=1)
    return weighted_mean(aucs, 1.0, axis=1)


def paired_bootstrap_auc(
    targets: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    task: str,
    groups: np.ndarray | list | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedBootstrapResult:
    """Paired bootstrap of the macro ROC-AUC difference (a - b), resampling patients when given."""
    probs_a, targets = check_arrays(probs_a, targets, task)
    probs_b, _ = check_arrays(probs_b, targets, task)
    known = valid_mask(targets, task)
    y0 = np.nan_to_num(targets)
    ranked_a = [RankedScores(probs_a[known[:, c], c], y0[known[:, c], c]) for c in range(targets.shape[1])]
    ranked_b = [RankedScores(probs_b[known[:, c], c], y0[known[:, c], c]) for c in range(targets.shape[1])]
    ones = np.ones((1, len(targets)))
    diff = float((_macro_auc(ranked_a, known, ones) - _macro_auc(ranked_b, known, ones))[0])
    reps = []
    for w in resample_weights(
        len(targets), groups, n_boot, seed, chunk=max(1, 2_000_000 // max(known.size, 1))
    ):
        reps.append(_macro_auc(ranked_a, known, w) - _macro_auc(ranked_b, known, w))
    d = np.concatenate(reps)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return PairedBootstrapResult(diff, (float("nan"), float("nan")), float("nan"), n_boot)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(d, [tail, 100.0 - tail])
    if np.all(d == 0):
        p = 1.0
    else:  # (1 + count) / (1 + n): a Monte Carlo p-value is never 0, at most 2 / (n + 1) apart
        tail_count = min(int((d <= 0).sum()), int((d >= 0).sum()))
        p = float(min(1.0, 2.0 * (1 + tail_count) / (1 + d.size)))
    return PairedBootstrapResult(diff, (float(lo), float(hi)), p, n_boot)


def format_p(p: float) -> str:
    """A p-value for a table: three significant digits, ``< 0.001`` below that (a bootstrap or an
    asymptotic p that small says only "far beyond chance"; printing 0 or 1e-17 says more)."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 1e-3 else f"{p:.3g}"

"""Site shift: one model's AUROC on its own test split (internal) against another dataset
(external), per finding the two datasets share by name (:func:`chestxai.labels.meet`).

Zech et al. (PLOS Medicine 2018) saw a pneumonia model fall from 0.931 inside its hospitals to
0.815 at another; this is that comparison, written into ``metrics.json`` of an external
evaluation under ``site_shift`` (keys in docs/SITE_SHIFT.md). The two sets share no images, so
each AUROC gets its own patient-bootstrap CI, the difference a CI from the two independent
bootstraps, and the test is DeLong's *unpaired* form (:func:`chestxai.metrics.delong.delong_unpaired`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.labels import Meeting, meet, shared_targets
from chestxai.metrics.bootstrap import (
    SMALL_N,
    bootstrap_unit,
    count_clusters,
    percentile_interval,
    resample_weights,
)
from chestxai.metrics.delong import delong_unpaired
from chestxai.metrics.ranking import RankedScores

log = logging.getLogger(__name__)

TEST_NOTE = (
    "DeLong unpaired test (two independent ROC curves, DeLong et al. 1988); images are treated as "
    "independent, so with several images per patient the p-value is optimistic"
)
DIFF_NOTE = "internal minus external; CI from the two independent bootstraps (percentile)"


@dataclass
class SiteScores:
    """One set of images scored by the run: ``probs`` (N x run labels), the set's own ``labels``
    (N x ``label_names``), patient ids, and where it came from."""

    probs: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    patient_ids: np.ndarray
    cache: str
    split: str
    task: str
    rows_from: str = ""


def _auc_with_ci(y: np.ndarray, s: np.ndarray, groups: np.ndarray, n_boot: int, seed: int, level: float):
    ranked = RankedScores(s, y)
    point = float(ranked.auc(np.ones((1, len(y))))[0]) if len(y) else float("nan")
    samples = np.concatenate([ranked.auc(w) for w in resample_weights(len(y), groups, n_boot, seed)])
    return point, samples, percentile_interval(samples, level)


def _num(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _side(y: np.ndarray, s: np.ndarray, groups: np.ndarray, n_boot: int, seed: int, level: float):
    keep = ~np.isnan(y)
    y, s, groups = y[keep], s[keep], groups[keep]
    n_pos = int((y == 1).sum())
    entry: dict[str, Any] = {
        "n": int(len(y)),
        "n_pos": n_pos,
        "n_neg": int(len(y) - n_pos),
        "n_patients": count_clusters(groups, len(y)),
    }
    if n_pos < 2 or len(y) - n_pos < 2:
        entry["roc_auc"] = {"value": None, "ci": [None, None]}
        return entry, None, (y, s)
    point, samples, (lo, hi) = _auc_with_ci(y, s, groups, n_boot, seed, level)
    entry["roc_auc"] = {"value": _num(point), "ci": [_num(lo), _num(hi)]}
    return entry, samples, (y, s)


def compare_sites(
    internal: SiteScores,
    external: SiteScores,
    run_labels: list[str],
    meeting: Meeting | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """The ``site_shift`` entry: per shared finding, internal and external AUROC with CIs, their
    difference with a CI, and the unpaired DeLong p. Findings with fewer than 2 positives or
    negatives on a side are listed with ``null`` AUROC and no test; fewer than
    :data:`~chestxai.metrics.bootstrap.SMALL_N` are flagged ``small_n`` (CIs rough)."""
    meeting = meeting or meet(run_labels, external.label_names, external.task)
    findings: dict[str, Any] = {}
    for r, cols in meeting.shared.items():
        j = run_labels.index(r)
        y_int = internal.labels[:, internal.label_names.index(r)].astype(np.float64)
        y_ext = shared_targets(external.labels, external.label_names, cols)
        a, a_samples, (ya, sa) = _side(y_int, internal.probs[:, j], internal.patient_ids, n_boot, seed, level)
        b, b_samples, (yb, sb) = _side(
            y_ext, external.probs[:, j], external.patient_ids, n_boot, seed + 1, level
        )
        entry: dict[str, Any] = {
            "data_labels": list(cols),
            "how": meeting.how[r],
            "internal": a,
            "external": b,
        }
        if a_samples is not None and b_samples is not None:
            d = a_samples - b_samples
            lo, hi = percentile_interval(d, level)
            test = delong_unpaired(ya, sa, yb, sb)
            entry["difference"] = {"value": _num(test.diff), "ci": [_num(lo), _num(hi)]}
            entry["delong_p"] = _num(test.p_value)
            entry["delong_z"] = _num(test.z)
        else:
            entry["difference"] = {"value": None, "ci": [None, None]}
            entry["delong_p"] = None
            entry["delong_z"] = None
            entry["note"] = "fewer than 2 positives or 2 negatives on a side: AUROC undefined, not tested"
        entry["small_n"] = min(a["n_pos"], a["n_neg"], b["n_pos"], b["n_neg"]) < SMALL_N
        findings[r] = entry
    return {
        "internal": _where(internal),
        "external": _where(external),
        "labels": meeting.to_json(),
        "bootstrap": {
            "n_boot": n_boot,
            "level": level,
            "seed": seed,
            "method": "percentile",
            "unit": {
                "internal": bootstrap_unit(internal.patient_ids, len(internal.probs)),
                "external": bootstrap_unit(external.patient_ids, len(external.probs)),
            },
            "small_n_min_count": SMALL_N,
        },
        "difference_note": DIFF_NOTE,
        "test": TEST_NOTE,
        "findings": findings,
    }


def _where(side: SiteScores) -> dict[str, Any]:
    return {
        "cache": side.cache,
        "split": side.split,
        "rows_from": side.rows_from,
        "n_images": int(len(side.probs)),
        "n_patients": count_clusters(side.patient_ids, len(side.probs)),
    }


def format_table(entry: dict[str, Any]) -> str:
    """The printed table of a ``site_shift`` entry (what ``evaluate --data`` shows)."""
    from chestxai.metrics.significance import format_p

    def auc(e: dict) -> str:
        v = e["roc_auc"]
        if v["value"] is None:
            return f"{'n/a':>22}"
        return f"{v['value']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]".rjust(22)

    ext = Path(entry["external"]["cache"]).name
    lines = [f"site shift: internal ({entry['internal']['split']} of the run's cache) vs external ({ext})"]
    lines.append(
        f"  {'finding':<18}{'internal AUROC':>22}{'external AUROC':>22}{'diff':>8}  p (DeLong)  n+/n- int | ext"
    )
    for name, e in entry["findings"].items():
        d = e["difference"]["value"]
        p = e["delong_p"]
        counts = f"{e['internal']['n_pos']}/{e['internal']['n_neg']} | {e['external']['n_pos']}/{e['external']['n_neg']}"
        lines.append(
            f"  {name:<18}{auc(e['internal'])}{auc(e['external'])}"
            f"{(f'{d:+.3f}' if d is not None else 'n/a'):>8}  {(format_p(p) if p is not None else 'n/a'):>10}  "
            f"{counts}{'  (small n)' if e['small_n'] else ''}"
        )
    labels = entry["labels"]
    if not entry["findings"]:
        lines.append("  no finding of the run meets the external labels by name")
    if labels["run_only"]:
        lines.append(f"  not in the external data: {', '.join(labels['run_only'])}")
    if labels["data_only"]:
        lines.append(f"  external labels the run does not predict: {', '.join(labels['data_only'])}")
    lines.extend(f"  note: {n}" for n in labels["notes"])
    return "\n".join(lines)


@dataclass
class SiteSets:
    """The rows of a site comparison: the run's own ``split`` rows (internal) and the external
    cache's rows, with the caches they index (what :func:`open_sites` resolves once for both the
    AUROC comparison and the site probe)."""

    internal_cache: Any
    internal_rows: np.ndarray
    external_cache: Any
    external_rows: np.ndarray
    internal_split: str
    external_split: str
    external_from: str = ""  # where the external rows come from (split column, or every image)


def open_sites(trained, data: str | Path, split: str = "test") -> SiteSets:
    """The run's own test split and ``split`` of the cache ``data`` (every image when that cache
    defines no split, or with ``split='all'``). The external cache may carry other labels: only
    the findings that meet by name are compared."""
    from chestxai.data.cache import PreparedCache
    from chestxai.models.run_inputs import ALL, split_rows

    own = trained.inputs(None)
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"--data {path} does not exist; prepare it with `chestxai prepare` first")
    cache = PreparedCache(path)
    internal = (own.cache, own.rows("test"), "test")
    if split == ALL:
        return SiteSets(
            *internal[:2], cache, np.arange(len(cache)), "test", split, f"every image of {cache.path}"
        )
    per_split, source = split_rows(trained.run, cache, False)
    rows = per_split.get(split, np.zeros(0, np.int64))
    if not len(rows):
        raise ValueError(
            f"--data {path} has no images in split {split!r} ({source}); pass --split all to use every image"
        )
    return SiteSets(*internal[:2], cache, np.asarray(rows), "test", split, source)


def site_scores(
    trained, sets: SiteSets, *, batch_size: int = 256, progress: bool = False
) -> tuple[SiteScores, SiteScores]:
    """Predict both sides of :class:`SiteSets` with the run's model."""
    from chestxai.evaluation.evaluate import _RowView

    out = []
    for cache, rows, split, source in (
        (sets.internal_cache, sets.internal_rows, sets.internal_split, "the run's splits.csv"),
        (sets.external_cache, sets.external_rows, sets.external_split, sets.external_from),
    ):
        probs = trained.predict(_RowView(cache.images, rows), batch_size=batch_size, progress=progress)
        patients = cache.frame["patient_id"].astype(str).to_numpy()[rows]
        out.append(
            SiteScores(
                probs,
                cache.labels[rows],
                list(cache.label_names),
                patients,
                str(cache.path),
                split,
                cache.task,
                source,
            )
        )
    return out[0], out[1]


def labels_match(trained, data: str | Path) -> bool:
    """Whether the cache ``data`` carries the run's labels (then the full ``evaluate`` runs on it;
    otherwise only the findings that meet by name are scored, in ``site_shift``)."""
    from chestxai.data.cache import PreparedCache
    from chestxai.models.run_inputs import check_compatible

    try:
        check_compatible(PreparedCache(Path(data)), trained.facts)
    except ValueError:
        return False
    return True


def site_entries(
    trained,
    data: str | Path | None,
    split: str = "test",
    *,
    probe: str | None = None,
    folds: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, Any]:
    """``site_shift`` (with ``data``) and ``site_probe`` (with ``probe``: ``dataset`` needs
    ``data``; ``view`` probes the external cache's ``split`` rows, or the run's own test split
    without ``data``), as ``metrics.json`` holds them."""
    from chestxai.evaluation import site_probe

    out: dict[str, Any] = {}
    if probe is not None and probe not in site_probe.PROBES:
        raise ValueError(f"--probe {probe!r}: choose one of {', '.join(site_probe.PROBES)}")
    if data is None:
        if probe == "dataset":
            raise ValueError("--probe dataset compares the run's cache with another: pass --data OTHER_CACHE")
        if probe == "view":
            own = trained.inputs(None)
            out["site_probe"] = site_probe.view_probe(trained, own.cache, own.rows(split), folds=folds, seed=seed,
                                                      n_boot=n_boot, level=level, batch_size=batch_size, progress=progress)  # fmt: skip
        return out
    sets = open_sites(trained, data, split)
    internal, external = site_scores(trained, sets, batch_size=batch_size, progress=progress)
    out["site_shift"] = compare_sites(
        internal, external, list(trained.label_names), n_boot=n_boot, seed=seed, level=level
    )
    kw = {
        "folds": folds,
        "seed": seed,
        "n_boot": n_boot,
        "level": level,
        "batch_size": batch_size,
        "progress": progress,
    }
    if probe == "dataset":
        out["site_probe"] = site_probe.dataset_probe(trained, sets, **kw)
    elif probe == "view":
        out["site_probe"] = site_probe.view_probe(trained, sets.external_cache, sets.external_rows, **kw)
    return out


def write_site_entries(
    metrics_path: Path, entries: dict[str, Any], header: dict[str, Any] | None = None
) -> dict:
    """Add ``entries`` to the ``metrics.json`` this evaluation just wrote, or (``header``: the
    labels differ, so no full evaluation ran) write a new one of ``header`` + ``entries``."""
    from chestxai.rundir.jsonfile import read_json, to_jsonable, write_json

    base = dict(header) if header is not None else read_json(metrics_path)
    base.update(entries)
    base = to_jsonable(base)
    write_json(base, metrics_path)
    return base

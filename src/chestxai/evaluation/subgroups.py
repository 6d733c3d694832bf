"""``evaluate --by sex,age,view``: subgroup metrics of the evaluated split, written as ``subgroups``
into the split's ``metrics.json`` (``evaluate`` owns that file; this module only builds the entry).

The groups come from the evaluated cache's frame (the data contract's demographic columns,
:mod:`chestxai.data.demographics`), row for row with the predictions, so an image's sex, age and
view are those its reader recorded. Values are normalised again on reading (a cache written by an
older reader holds the dataset's raw text, e.g. NIH's ``Patient Gender``), and missing values are
never a group. Age is binned (:data:`~chestxai.metrics.subgroups.AGE_EDGES`, or ``--age-bins``).
An intersection ``sex:age`` (R's and patsy's interaction notation, safe unquoted in a shell) groups
by both at once - "F & 40-60" - where Seyyed-Kalantari et al. (2021) found underdiagnosis worst; an
image missing either part is missing from the intersection.
The numbers themselves are :func:`chestxai.metrics.subgroups.subgroup_metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from chestxai.data.demographics import (
    DEMOGRAPHIC_COLUMNS,
    group_labels,
    normalise_age,
    normalise_sex,
    normalise_view,
)
from chestxai.metrics.subgroups import (
    AGE_EDGES,
    MIN_COUNT,
    age_bin_names,
    age_groups,
    check_age_edges,
    subgroup_metrics,
)

log = logging.getLogger(__name__)

#: Frame columns that identify images rather than group them: refused by ``--by``.
NOT_GROUPS = ("image_id", "path", "patient_id", "split")
#: ``--by sex:age``: the groups of two (or more) columns at once
INTERSECT = ":"
#: joins the parts of an intersection's group name ("F & 40-60")
GROUP_JOIN = " & "


def parts(name: str) -> list[str]:
    """The columns of one ``--by`` item: ``"sex:age"`` -> ``["sex", "age"]``, ``"sex"`` -> ``["sex"]``."""
    return [t.strip() for t in name.split(INTERSECT)]


def parse_by(text: str) -> list[str]:
    """``"sex,age,view,sex:age"`` -> ``["sex", "age", "view", "sex:age"]`` (the ``--by`` flag)."""
    names = [INTERSECT.join(parts(t)) for t in str(text).split(",") if t.strip()]
    if not names:
        raise ValueError("--by needs column names, e.g. --by sex,age,view (or sex:age for an intersection)")
    for name in names:
        cols = parts(name)
        if "" in cols or len(set(cols)) != len(cols):
            raise ValueError(f"--by {name}: an intersection names two different columns, e.g. sex:age")
    bad = [c for n in names for c in parts(n) if c in NOT_GROUPS]
    if bad:
        raise ValueError(
            f"--by {','.join(bad)}: an identifier, not a group; use e.g. {','.join(DEMOGRAPHIC_COLUMNS)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"--by {text}: a column is named twice")
    return names


def parse_age_bins(text: str) -> tuple[float, ...]:
    """``"40,60"`` -> ``(40.0, 60.0)``: bins 0-40, 40-60, 60+ (the ``--age-bins`` flag)."""
    try:
        edges = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(
            f"--age-bins {text}: give ages in years separated by commas, e.g. 20,40,60,80"
        ) from None
    return check_age_edges(edges)


def check_columns(frame: pd.DataFrame, by: Sequence[str], where: str) -> None:
    """A ValueError naming the columns ``where`` has when one of ``by`` is not among them."""
    missing = [c for b in by for c in parts(b) if c not in frame.columns]
    if missing:
        have = [c for c in frame.columns if c not in NOT_GROUPS]
        demo = [c for c in DEMOGRAPHIC_COLUMNS if c in frame.columns]
        raise ValueError(
            f"--by {','.join(missing)}: {where} has no such column; it has {demo or 'no demographic columns'}"
            f" (all columns you can group by: {have}). Re-prepare the cache with a reader that records "
            f"them, or choose --by from these"
        )


def group_columns(
    frame: pd.DataFrame, by: Sequence[str], age_edges: Sequence[float] = AGE_EDGES
) -> dict[str, np.ndarray]:
    """Group label per row (``None`` = missing) for each item in ``by``: sex, age (binned) and
    view normalised by :mod:`chestxai.data.demographics`, any other column as recorded; an
    intersection joins its parts' labels (missing when any part is)."""
    out = {}
    for name in by:
        labels = [_one_column(frame[c], c, age_edges) for c in parts(name)]
        out[name] = np.array(
            [
                None if any(v is None for v in row) else GROUP_JOIN.join(row)
                for row in zip(*labels, strict=True)
            ],
            dtype=object,
        )
    return out


def _one_column(col: pd.Series, name: str, age_edges: Sequence[float]) -> np.ndarray:
    if name == "age":
        return age_groups(normalise_age(col), age_edges)
    if name == "sex":
        return group_labels(normalise_sex(col))
    if name == "view":
        return group_labels(normalise_view(col))
    return group_labels(col)


def subgroups_entry(
    frame: pd.DataFrame,
    probs: np.ndarray,
    targets: np.ndarray,
    task: str,
    label_names: list[str],
    thresholds: dict[str, float] | None,
    patient_ids: np.ndarray,
    by: Sequence[str],
    *,
    age_edges: Sequence[float] = AGE_EDGES,
    min_count: int = MIN_COUNT,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """The ``subgroups`` entry of ``metrics.json`` for the evaluated rows (``frame`` is their rows of
    the cache's frame, aligned with ``probs``). ``thresholds``: the ones ``evaluate`` chose."""
    check_columns(frame, by, "the evaluated cache")
    groups = group_columns(frame, by, age_edges)
    empty = [b for b, g in groups.items() if all(v is None for v in g)]
    if empty:
        raise ValueError(
            f"--by {','.join(empty)}: no image of the evaluated split has a known value; the reader did not "
            "record it for this dataset"
        )
    th = None if thresholds is None else np.array([thresholds[n] for n in label_names], dtype=np.float64)
    entry = {"by": list(by)}
    if any("age" in parts(b) for b in by):
        edges = check_age_edges(age_edges)
        entry["age_bins"] = {
            "edges": list(edges),
            "names": age_bin_names(edges),
            "interval": "[lo, hi) years",
        }
    entry.update(
        subgroup_metrics(
            probs,
            targets,
            task,
            label_names,
            groups,
            th,
            patient_ids,
            min_count=min_count,
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
    )
    return entry


def _cell(e: dict | None) -> str:
    if e is None or e.get("value") is None:
        return "-"
    lo, hi = e.get("ci") or (None, None)
    ci = f" [{lo:.2f},{hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{e['value']:.3f}{ci}"


def summary_lines(entry: dict) -> list[str]:
    """A compact text table for the terminal: per attribute, group sizes, per finding the AUROC
    of each group (``too few`` where not scored) and flagged gaps."""
    lines = [f"subgroups (scored with >= {entry['min_count']} positives and negatives; AUROC [95% CI]):"]
    for attr, a in entry["attributes"].items():
        sizes = ", ".join(f"{g} {v['n_images']}" for g, v in a["groups"].items())
        lines.append(f"  {attr}: {sizes}" + (f", missing {a['n_missing']}" if a["n_missing"] else ""))
        names = list(a["groups"])
        width = max([len(f) for f in a["findings"]] + [8])
        for finding, f in a["findings"].items():
            cells = [
                f"{g} "
                + (_cell(f["groups"][g]["roc_auc"]) if f["groups"][g]["status"] == "scored" else "too few")
                for g in names
            ]
            gap = f["largest_gap"]["roc_auc"]
            flag = f"  gap {gap['value']:.3f} FLAGGED" if gap and gap["flagged"] else ""
            lines.append(f"    {finding:<{width}} " + " | ".join(cells) + flag)
        under = a.get("underdiagnosis")
        if under:
            cells = [
                f"{g} " + (_cell(u) if u["status"] == "scored" else "too few")
                for g, u in under["groups"].items()
            ]
            lines.append(f"    {'underdiagnosis':<{width}} " + " | ".join(cells))
    flagged = [
        f"{attr}/{finding} {metric} {gap['higher']} - {gap['lower']} {_cell(gap)}"
        for attr, a in entry["attributes"].items()
        for finding, f in a["findings"].items()
        for metric, gap in f["largest_gap"].items()
        if gap and gap["flagged"]
    ]
    if flagged:
        lines.append(
            "  gaps whose CI excludes 0 (a screen: the pair is the highest vs the lowest group): "
            + "; ".join(flagged)
        )
    return lines

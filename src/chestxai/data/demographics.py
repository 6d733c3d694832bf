"""Demographic columns of the data contract (``sex``, ``age``, ``view``, ``site``): the one place
their values are normalised.

Readers put what their dataset records into the frame under these names (NIH ``Patient Gender`` /
``Patient Age`` / ``View Position``, CheXpert ``Sex`` / ``Age`` / AP-PA, DICOM ``PatientSex`` /
``PatientAge`` / ``ViewPosition``, a manifest's named columns); :class:`~chestxai.data.table.ImageTable`
passes every frame through :func:`normalise_frame`, so subgroup metrics see one vocabulary whatever
the source. The rules, stated once:

* ``sex``: ``"F"`` or ``"M"`` (``F``/``female``/``woman``, ``M``/``male``/``man``, any case).
  Anything else (blank, ``O``, ``Unknown``, NaN) is **missing** (``None``), never a group.
* ``age``: float years. Numbers are years; DICOM age strings ``nnnY``/``nnnM``/``nnnW``/``nnnD``
  (``"045Y"``) are converted. Negative ages and ages above :data:`MAX_AGE` (the 2017 NIH table
  has ages up to 414, data-entry errors its 2020 revision corrects; the NIH reader prefers that
  revision) are missing (NaN).
* ``view``: ``"PA"``, ``"AP"`` (``AP Supine``, ``AP semi erect``... are AP) or ``"LATERAL"``
  (``L``, ``LAT``, ``Lateral``); another recorded text is kept upper-cased (DICOM's ``LL``/``RL``
  stay as they are: CheXpert records them on 17 images it calls frontal, so the text alone does not
  say lateral); blank
  or NaN is ``""`` (the contract's required ``view`` column has always been a string; grouping
  treats ``""`` as missing).
* ``site``: the hospital or source the dataset records for the image (a manifest's site column,
  the COVID collection's ``location``), else the reader's name: the unit a site-shift analysis
  compares.

:func:`is_missing` says which group values are missing; :func:`group_labels` turns a column into
group names with ``None`` for missing, which is what subgroup metrics take.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: The optional demographic frame columns, in the order the docs list them.
DEMOGRAPHIC_COLUMNS = ("sex", "age", "view", "site")
#: Ages above this many years are data-entry errors, kept missing.
MAX_AGE = 120.0
SEXES = {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
LATERAL = {"l", "lat", "lateral"}
#: Text that means "not recorded" in any demographic column (compared stripped, lower-cased).
MISSING_TEXT = frozenset({"", "nan", "none", "<na>", "nat", "null", "unknown", "u", "o", "other", "-"})
_DICOM_AGE = re.compile(r"^\s*(\d{1,3})\s*([YMWD])\s*$", re.IGNORECASE)
_PER_YEAR = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}


def is_missing(values: pd.Series | np.ndarray | list) -> np.ndarray:
    """Bool per value: ``None``, NaN, blank or a "not recorded" text (:data:`MISSING_TEXT`)."""
    s = pd.Series(np.asarray(values, dtype=object).ravel())
    return (s.isna() | s.astype(str).str.strip().str.lower().isin(MISSING_TEXT)).to_numpy()


def normalise_sex(values: pd.Series | list) -> list[str | None]:
    """``"F"`` / ``"M"`` / ``None`` per value (see the module rules)."""
    s = pd.Series(np.asarray(values, dtype=object).ravel())
    text = s.where(s.notna(), "").astype(str).str.strip().str.lower()
    return [SEXES.get(t) for t in text]


def parse_age(value: object) -> float:
    """Years as a float, or NaN: numbers, numeric text and DICOM age strings (``"045Y"``, ``"006M"``)."""
    if value is None:
        return float("nan")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        years = float(value)
    else:
        text = str(value).strip()
        match = _DICOM_AGE.match(text)
        if match:
            years = int(match.group(1)) / _PER_YEAR[match.group(2).upper()]
        else:
            try:
                years = float(text)
            except ValueError:
                return float("nan")
    if not np.isfinite(years) or years < 0 or years > MAX_AGE:
        return float("nan")
    return years


def normalise_age(values: pd.Series | list) -> np.ndarray:
    """Float years per value, NaN where unknown or implausible (see the module rules)."""
    s = pd.Series(np.asarray(values, dtype=object).ravel())
    numeric = pd.to_numeric(s, errors="coerce")
    out = numeric.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    # DICOM age strings and other text: the slow path only for the values to_numeric could not read
    for i in np.flatnonzero(np.isnan(out) & s.notna().to_numpy()):
        out[i] = parse_age(s.iloc[i])
    with np.errstate(invalid="ignore"):
        out[(out < 0) | (out > MAX_AGE)] = np.nan
    return out


def normalise_view(values: pd.Series | list) -> list[str]:
    """``"PA"`` / ``"AP"`` / ``"LATERAL"`` / another recorded view upper-cased / ``""`` (unknown)."""
    s = pd.Series(np.asarray(values, dtype=object).ravel())
    text = s.where(s.notna(), "").astype(str).str.strip()
    out = []
    for t in text:
        low = t.lower()
        if low in MISSING_TEXT:
            out.append("")
        elif low in LATERAL:
            out.append("LATERAL")
        elif low.startswith("pa"):
            out.append("PA")
        elif low.startswith("ap"):
            out.append("AP")
        else:
            out.append(" ".join(t.upper().split()))
    return out


def normalise_site(values: pd.Series | list, source: str) -> list[str]:
    """The recorded site per value, stripped; the reader's name ``source`` where none is recorded."""
    s = pd.Series(np.asarray(values, dtype=object).ravel())
    missing = is_missing(s)
    return [source if m else str(v).strip() for v, m in zip(s, missing, strict=True)]


def normalise_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with its demographic columns normalised and ``site`` added (the reader's name)
    when the reader recorded none. Other columns are untouched; idempotent."""
    frame = frame.copy()
    if "sex" in frame.columns:
        frame["sex"] = pd.Series(normalise_sex(frame["sex"]), index=frame.index, dtype=object)
    if "age" in frame.columns:
        frame["age"] = normalise_age(frame["age"])
    frame["view"] = normalise_view(frame["view"])
    frame["site"] = normalise_site(frame["site"], source) if "site" in frame.columns else source
    return frame


def group_labels(values: pd.Series | np.ndarray | list) -> np.ndarray:
    """Object array of group names, ``None`` where the value is missing: a missing value is never
    turned into a group (no ``"nan"`` group, no ``""`` group)."""
    arr = np.asarray(values, dtype=object).ravel()
    missing = is_missing(arr)
    out = np.empty(len(arr), dtype=object)
    for i, (v, m) in enumerate(zip(arr, missing, strict=True)):
        out[i] = None if m else str(v).strip()
    return out

"""Canonical finding names shared across datasets, readers, tests and benchmarks.

One place for the lists the field keeps retyping: the 14 ChestX-ray14 findings (in the order of
the NIH release and ChestMNIST), the 8 findings that carry official NIH boxes, the spellings
other files use for them, and the class names that mean "no disease".

:data:`SYNONYMS` is the ONE mapping between datasets' spellings of the same finding: NIH's
``Effusion`` is CheXpert's and ChestX-ray8's ``Pleural Effusion``, CheXlocalize's ``Airspace
Opacity`` is CheXpert's ``Lung Opacity``. :func:`same_finding` / :func:`spelling_in` compare
names through it (case-insensitively), so a reader, a ground-truth file and a model's outputs
meet whichever dataset each was spelt for.
"""

from __future__ import annotations

import re

# ChestX-ray14 (Wang et al. 2017) findings, in the release's order; "No Finding" = all zeros
NIH14 = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]  # fmt: skip
NO_FINDING = "No Finding"
# the findings with official bounding boxes (BBox_List_2017.csv)
NIH_BOXED = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
]

# other spellings seen in NIH files and derived sets -> the Data_Entry names
SYNONYMS = {
    "Infiltrate": "Infiltration",
    "Infiltrates": "Infiltration",
    "Pleural Thickening": "Pleural_Thickening",
    "Pleural_thickening": "Pleural_Thickening",
    "Pleural effusion": "Effusion",
    "Pleural Effusion": "Effusion",
    "No finding": NO_FINDING,
    # CheXlocalize (Saporta et al. 2022) renamed CheXpert's "Lung Opacity" in its files
    "Airspace Opacity": "Lung Opacity",
}


def canonical(name: str) -> str:
    """The Data_Entry spelling of a finding name (``Infiltrate`` -> ``Infiltration``)."""
    name = str(name).strip()
    return SYNONYMS.get(name, name)


def _finding_key(name: str) -> str:
    folded = str(name).strip().casefold()
    return _FOLDED_SYNONYMS.get(folded, folded).casefold()


_FOLDED_SYNONYMS = {k.casefold(): v for k, v in SYNONYMS.items()}


def same_finding(a: str, b: str) -> bool:
    """Whether two spellings name one finding (``Effusion`` / ``pleural effusion``: yes)."""
    return _finding_key(a) == _finding_key(b)


def spelling_in(name: str, names) -> str | None:
    """The entry of ``names`` that is the finding ``name`` (through :data:`SYNONYMS`), else None.

    An exact match wins over a synonym, so a list holding both spellings keeps each its own.
    """
    names = list(names)
    if name in names:
        return name
    return next((n for n in names if same_finding(name, n)), None)


# class names that mean "no disease" (Kermany NORMAL, COVID-19 Radiography Normal, TBX11K health,
# NIH No Finding...), compared lower-case with "_" and "-" read as spaces: a pair of class folders
# with one of these is a binary task for the other class
NORMAL_NAMES = frozenset({"normal", "no finding", "healthy", "health", "negative"})


def is_normal_name(name: str) -> bool:
    """``NORMAL``, ``Normal``, ``No_Finding``, ``healthy``...: a class of images without disease."""
    return " ".join(re.split(r"[\s_-]+", str(name).strip().lower())) in NORMAL_NAMES

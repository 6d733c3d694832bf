"""Canonical finding names shared across datasets, readers, tests and benchmarks.

One place for the lists the field keeps retyping: the 14 ChestX-ray14 findings (in the order of
the NIH release and ChestMNIST), the 8 findings that carry official NIH boxes, the spellings
other files use for them, and the class names that mean "no disease".

:data:`SYNONYMS` is the ONE mapping between datasets' spellings of the same finding: NIH's
``Effusion`` is CheXpert's and ChestX-ray8's ``Pleural Effusion``, CheXlocalize's ``Airspace
Opacity`` is CheXpert's ``Lung Opacity``. :func:`same_finding` / :func:`spelling_in` compare
names through it (case-insensitively), so a reader, a ground-truth file and a model's outputs
meet whichever dataset each was spelt for.

:func:`meet` is where two datasets' label lists meet (a run trained on NIH scored on the COVID-19
collection, CheXpert, RSNA or SIIM): the findings they share, by name, synonym, a part of a
hierarchical name (``Pneumonia/Viral/COVID-19``) or a kind of the finding (:data:`KINDS_OF`), and
what does not meet. RSNA's reader already names its "Lung Opacity" target ``Pneumonia`` and SIIM's
``Pneumothorax``; CheXpert's ``Lung Opacity`` is *not* pneumonia and meets nothing of NIH's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

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
    # torchxrayvision / other derived sets
    "Lung Nodule": "Nodule",
}

#: a finding -> the names that are a kind of it. The COVID-19 image data collection (Cohen et al.)
#: files its findings as ``Pneumonia/<Viral|Bacterial|Fungal|...>/<pathogen>``; its June 2020
#: snapshot writes only the pathogen (``COVID-19``, ``SARS``, ``Streptococcus``...), each a pneumonia.
#: ``ARDS`` and ``No Finding`` are not. Only a multi-label or multi-class dataset (every finding a
#: column) can say "no pneumonia" from these: a binary ``COVID-19`` label's negatives may be SARS.
KINDS_OF = {
    "Pneumonia": (
        "Viral", "Bacterial", "Fungal", "Lipoid", "Aspiration",
        "COVID-19", "SARS", "MERS", "MERS-CoV", "Influenza", "Varicella", "Herpes",
        "Streptococcus", "Klebsiella", "Legionella", "Mycoplasma", "Chlamydophila", "E.Coli",
        "Staphylococcus", "MRSA", "Nocardia", "Pneumocystis", "Aspergillosis", "Histoplasmosis",
    ),
}  # fmt: skip


def canonical(name: str) -> str:
    """The Data_Entry spelling of a finding name (``Infiltrate`` -> ``Infiltration``)."""
    name = str(name).strip()
    return SYNONYMS.get(name, name)


def _fold(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def finding_key(name: str) -> str:
    """The comparison key of a finding name: letters and digits only, lower case, through
    :data:`SYNONYMS` (``Pleural_Thickening``, ``pleural thickening``: one key)."""
    folded = _fold(name)
    return _FOLDED_SYNONYMS.get(folded, folded)


_FOLDED_SYNONYMS = {_fold(k): _fold(v) for k, v in SYNONYMS.items()}
_FOLDED_KINDS = {_fold(k): frozenset(_fold(n) for n in v) for k, v in KINDS_OF.items()}


def same_finding(a: str, b: str) -> bool:
    """Whether two spellings name one finding (``Effusion`` / ``pleural effusion``: yes)."""
    return finding_key(a) == finding_key(b)


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


def name_parts(name: str) -> list[str]:
    """``Pneumonia/Viral/COVID-19`` or ``COVID-19, ARDS`` -> its parts (a plain name: itself)."""
    return [p.strip() for p in re.split(r"[/,]", str(name)) if p.strip()]


def is_kind_of(name: str, finding: str) -> bool:
    """Whether ``name`` is a kind of ``finding`` per :data:`KINDS_OF` (``SARS`` of ``Pneumonia``)."""
    return finding_key(name) in _FOLDED_KINDS.get(finding_key(finding), ())


@dataclass(frozen=True)
class Meeting:
    """Where a run's labels meet another dataset's (:func:`meet`).

    ``shared``: run label -> the data labels that carry it (a case is positive when any of them
    is); ``how``: run label -> ``name`` (same spelling), ``synonym``, ``part`` (a part of a
    hierarchical or comma-joined name) or ``kind`` (:data:`KINDS_OF`); ``run_only`` / ``data_only``:
    the labels that meet nothing, and ``notes`` why a near-meeting was refused.
    """

    shared: dict[str, list[str]]
    how: dict[str, str]
    run_only: list[str]
    data_only: list[str]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "shared": {k: list(v) for k, v in self.shared.items()},
            "how": dict(self.how),
            "run_only": list(self.run_only),
            "data_only": list(self.data_only),
            "notes": list(self.notes),
        }


def meet(run_labels, data_labels, data_task: str = "multilabel") -> Meeting:
    """The findings a run (``run_labels``) shares with another dataset (``data_labels`` of a
    ``data_task`` cache), matched by name through :data:`SYNONYMS`.

    A data label carries a run label when it names it (any spelling), when one of its parts does
    (``Pneumonia/Viral/COVID-19`` carries ``Pneumonia``; ``COVID-19, ARDS`` carries ``COVID-19``),
    or, in a multi-label or multi-class dataset, when it (or a part) is a kind of it
    (``Streptococcus`` carries ``Pneumonia``). A binary dataset meets only by the name of its
    one label: its negatives are "not this label", not "no finding of the kind".
    """
    run_labels, data_labels = [str(n) for n in run_labels], [str(n) for n in data_labels]
    whole_table = data_task in ("multilabel", "multiclass")
    shared: dict[str, list[str]] = {}
    how: dict[str, str] = {}
    notes: list[str] = []
    for r in run_labels:
        named = [d for d in data_labels if same_finding(r, d)]
        parts = [d for d in data_labels if d not in named and any(same_finding(r, p) for p in name_parts(d))]
        kinds = [
            d
            for d in data_labels
            if d not in named and d not in parts and any(is_kind_of(p, r) for p in name_parts(d))
        ]
        if not whole_table:
            if parts or kinds:
                notes.append(
                    f"{r}: the {data_task} label {', '.join(parts + kinds)} is a part or kind of it, but its "
                    f"negatives are not free of {r}; not compared"
                )
            parts, kinds = [], []
        cols = named + parts + kinds
        if not cols:
            continue
        shared[r] = cols
        how[r] = "kind" if kinds else "part" if parts else "name" if all(d == r for d in named) else "synonym"
    used = {d for cols in shared.values() for d in cols}
    return Meeting(
        shared,
        how,
        [r for r in run_labels if r not in shared],
        [d for d in data_labels if d not in used],
        notes,
    )


def shared_targets(labels: np.ndarray, data_labels, columns) -> np.ndarray:
    """0/1/NaN targets of one shared finding from a dataset's ``N x L`` labels: 1 where any of
    ``columns`` (names of ``data_labels``) is 1, 0 where all are known 0, NaN otherwise."""
    data_labels = list(data_labels)
    idx = [data_labels.index(c) for c in columns]
    block = np.asarray(labels, dtype=np.float64)[:, idx]
    out = np.full(len(block), np.nan)
    known = ~np.isnan(block)
    out[known.all(axis=1)] = 0.0
    out[(block == 1).any(axis=1)] = 1.0
    return out

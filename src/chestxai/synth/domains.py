"""A CycleGAN domain: the prepared images a label text selects (``--domain-a`` / ``--domain-b``).

Spellings (:func:`parse_domain`)::

    Pneumothorax        the label is present (1)                      multi-label, binary
                        the class                                     multi-class
    not:Pneumothorax    the label is known to be absent (0)           every task
    No Finding          every label is known to be negative            multi-label, binary
                        the one normal-like class (NORMAL, healthy)   multi-class without a class of that name

A label name of the cache always wins over these rules, so a folder dataset with a class called
``No Finding`` selects that class. For PneumoniaMNIST (binary, label ``Pneumonia``),
``not:Pneumonia`` and ``No Finding`` both select the normal images.

Rows with an unknown (NaN) label never enter a domain: an unlabelled image is neither "with" nor
"without" the finding, and for ``No Finding`` a row with any unknown label is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chestxai.labels import NO_FINDING, is_normal_name
from chestxai.registry import did_you_mean

ABSENT_PREFIX = "not:"


@dataclass(frozen=True)
class DomainSpec:
    """One parsed domain. ``label`` is the label it tests (None for No Finding), ``present`` whether
    the domain's images carry it (True) or are known not to (False)."""

    text: str
    label: str | None
    present: bool

    @property
    def kind(self) -> str:
        """``present``, ``absent`` or ``no_finding``."""
        if self.label is None:
            return "no_finding"
        return "present" if self.present else "absent"


def parse_domain(text: str) -> DomainSpec:
    """``"Pneumothorax"``, ``"not:Pneumothorax"`` or ``"No Finding"`` -> :class:`DomainSpec`
    (syntax only; :func:`domain_mask` checks the label against a cache)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a domain is empty; give a label name (Pneumothorax), not:LABEL or 'No Finding'")
    text = text.strip()
    if text.lower().startswith(ABSENT_PREFIX):
        label = text[len(ABSENT_PREFIX) :].strip()
        if not label:
            raise ValueError(f"domain {text!r} names no label after 'not:'; e.g. not:Pneumothorax")
        return DomainSpec(text, label, False)
    if text.lower() == NO_FINDING.lower():
        return DomainSpec(text, None, True)
    return DomainSpec(text, text, True)


def _unknown_label(label: str, names: list[str], where: str) -> ValueError:
    hint = did_you_mean(label, names)
    return ValueError(
        f"domain label {label!r} is not a label of {where}{hint}; its labels are: {', '.join(names)} "
        f"(or use 'No Finding' / not:LABEL)"
    )


def domain_mask(
    labels: np.ndarray, label_names: list[str], task: str, spec: DomainSpec, where: str = "the cache"
) -> np.ndarray:
    """Boolean mask over all rows of ``labels`` (float N x L, NaN = unknown) for ``spec``."""
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim == 1:
        labels = labels[:, None]
    names = list(label_names)
    no_finding_class = spec.label is None and spec.text in names  # a class literally called "No Finding"
    if spec.label is None and not no_finding_class:
        if task == "multiclass":
            normal = [n for n in names if is_normal_name(n)]
            if len(normal) != 1:
                raise ValueError(
                    f"domain 'No Finding' needs one normal-like class in the multi-class {where}; its classes "
                    f"are {', '.join(names)}: name the class instead"
                )
            return labels[:, names.index(normal[0])] == 1
        known = ~np.isnan(labels).any(axis=1)
        return known & (np.nan_to_num(labels, nan=1.0) == 0).all(axis=1)
    label = spec.text if no_finding_class else spec.label
    if label not in names:
        raise _unknown_label(str(label), names, where)
    column = labels[:, names.index(label)]
    return column == 1 if spec.present else column == 0  # NaN compares False either way


def select_rows(cache, spec: DomainSpec, split_rows: np.ndarray, split: str = "train") -> np.ndarray:
    """Sorted cache rows of ``split_rows`` (one split's rows) in domain ``spec``.

    ``cache`` is a :class:`~chestxai.data.cache.PreparedCache`. An unknown label is a ValueError
    listing the cache's labels; an empty domain is a ValueError naming domain, split and counts.
    """
    mask = domain_mask(cache.labels, cache.label_names, cache.task, spec, where=f"the cache {cache.path}")
    rows = np.asarray(split_rows, dtype=np.int64)
    picked = np.sort(rows[mask[rows]])
    if len(picked) == 0:
        raise ValueError(
            f"domain {spec.text!r} is empty in the {split} split of {cache.path}: 0 of its {len(rows)} images "
            f"match ({int(mask.sum())} in the whole cache); choose another label or a dataset that has it"
        )
    return picked

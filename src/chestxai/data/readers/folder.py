"""Class-per-folder image trees: Kermany pediatric pneumonia, COVID-19 Radiography Database, ...

Layout::

    <root>/[train|val|test/]<CLASS>/[images/]<image>.png|.jpg|.jpeg|.dcm
    <root>/<CLASS>/masks/<image>.png   optional lung masks beside images/ (COVID-19 Radiography)

Rules, applied to each image's path below ``root``:

* **split**: the first folder named ``train``/``val``/``test`` (or ``training``, ``valid``,
  ``validation``, ``testing``) anywhere on the path; ``""`` when there is none.
* **class**: the nearest folder above the file that is neither the root, a split folder, nor a
  generic container (``images``, ``imgs``, ``img``, ``dicom``...): Kermany
  ``train/PNEUMONIA/x.jpeg`` -> ``PNEUMONIA``; COVID-19 Radiography ``COVID/images/x.png`` ->
  ``COVID``.
* **no class**: images directly under the root (or directly in a split folder or generic
  container there) are still listed, with an all-NaN (unknown) label row, so that loose folders
  such as ``samples/`` or ``dicom/`` can be prepared and explained. With no class folder at all
  the table has zero label columns.
* **masks**: folders whose name ends in ``mask``/``masks`` are not read as images. When an image sits in ``images/``
  and a sibling ``masks/`` holds a file of the same name (COVID-19 Radiography Database lung
  masks), it goes to the masks side table as ``kind="png"``, label ``mask_label``.
* **patient** (``patient_rule``), so that splits keep a patient's images together. ``auto``
  (default): from Kermany's file names, ``person123_bacteria_456.jpeg`` -> ``person123``
  (PNEUMONIA); ``IM-0115-0001.jpeg`` -> ``IM-0115`` and ``NORMAL2-IM-1427-0001.jpeg`` ->
  ``NORMAL2-IM-1427`` (NORMAL: the last number counts images of one patient); then the COVID-19
  collections' letter suffix: a stem ending in a digit and one lowercase letter is that letter's
  series of one patient, ``COVID-00039a``/``b``/``c`` -> ``COVID-00039`` (also
  ``lancet-case2a``/``b``, ``...fig1a``/``b`` in ieee8023/covid-chestxray-dataset, where the
  metadata gives them one ``patientid``). Grouping two patients as one only costs a little split
  precision; splitting one patient in two leaks. Other names: the file stem (one image per
  patient). ``patient_rule=stem`` turns every rule off (one patient per file);
  ``patient_rule=REGEX`` is searched in each stem, its first group (or the whole match) being the
  patient; stems it does not match are their own patient (counted in the notes).
* **symlinked folders** are followed, each real folder once; folders that cannot be read and
  links that would loop are listed in the table's ``skipped`` and ``notes`` (and logged), and
  so are files that are not regular (FIFOs, devices, dangling links): they are never opened.

Labels (``task``):

* ``positive=NAME``: ``binary``, that class vs the rest.
* **two class folders, one of them normal-like** (``NORMAL``, ``Normal``, ``No Finding``,
  ``healthy``, ``negative``...; see :data:`chestxai.labels.NORMAL_NAMES`): ``binary``, the label is the other
  folder's name, as if ``positive`` named it. This is the Kermany ``NORMAL``/``PNEUMONIA`` layout,
  which then trains and is scored like any binary task (one sigmoid, ROC-AUC of the positives).
  ``multiclass=true`` keeps the two one-hot columns instead.
* otherwise ``multiclass``: one-hot over the discovered classes, sorted (a two-class tree with no
  normal-like folder, e.g. ``COVID``/``Viral Pneumonia``, stays a 2-class multiclass task).

``pneumonia_subtypes`` splits Kermany's ``PNEUMONIA`` into ``PNEUMONIA_BACTERIA`` /
``PNEUMONIA_VIRUS`` from the file name, the 3-class setup of the Kermany et al. paper.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.data.readers import READERS
from chestxai.data.readers._common import (
    IMAGE_EXTENSIONS,
    SPLIT_ALIASES,
    as_list,
    make_frame,
    one_hot,
    walk_files,
)
from chestxai.data.table import ImageTable, empty_masks
from chestxai.labels import is_normal_name

log = logging.getLogger(__name__)

GENERIC_DIRS = {"images", "image", "imgs", "img", "png", "jpg", "jpeg", "dicom", "dcm", "files"}
MASK_DIRS = ("masks", "mask")
KERMANY_PATIENT = re.compile(r"^(person\d+)_", re.IGNORECASE)
# Kermany NORMAL files: <patient>-<image number>, the patient being IM-NNNN or NORMAL2-IM-NNNN
KERMANY_NORMAL_PATIENT = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)-\d+$", re.IGNORECASE)
# COVID collections: COVID-00039a / COVID-00039b are images of one patient (stem + one letter)
LETTER_SUFFIX_PATIENT = re.compile(r"^(.*\d)[a-z]$")
PATIENT_RULES = ("auto", "stem")


def is_mask_dir(name: str) -> bool:
    """``masks/``, ``mask/``, ``lungVAE-masks/``...: mask images, never read as X-rays."""
    return name.lower().endswith(MASK_DIRS)


def _split_and_class(parts: tuple[str, ...]) -> tuple[str, str | None]:
    """``parts`` are the folders between root and the file."""
    split, start = "", 0
    for i, p in enumerate(parts):
        if p.lower() in SPLIT_ALIASES:
            split, start = SPLIT_ALIASES[p.lower()], i + 1
            break
    for p in reversed(parts[start:]):
        if p.lower() not in GENERIC_DIRS:
            return split, p
    return split, None


def _subtype(cls: str | None, name: str) -> str | None:
    if cls is None or cls.upper() != "PNEUMONIA":
        return cls
    low = name.lower()
    if "bacteria" in low:
        return f"{cls}_BACTERIA"
    if "virus" in low:
        return f"{cls}_VIRUS"
    return None


def patient_of(path: Path, rule: str = "auto") -> str:
    """The patient an image file belongs to under ``rule`` (``auto``, ``stem`` or a regex; see the
    module docstring)."""
    if rule == "stem":
        return path.stem
    if rule != "auto":
        m = re.search(rule, path.stem)
        return (m.group(1) if m.re.groups else m.group(0)) if m else path.stem
    m = (
        KERMANY_PATIENT.match(path.name)
        or KERMANY_NORMAL_PATIENT.match(path.stem)
        or LETTER_SUFFIX_PATIENT.match(path.stem)
    )
    return m.group(1) if m else path.stem


def _patient_rule(rule: str) -> str:
    """``rule`` checked: ``auto``, ``stem`` or a regex that compiles (an error names the option)."""
    rule = str(rule)
    if rule in PATIENT_RULES:
        return rule
    try:
        re.compile(rule)
    except re.error as exc:
        raise ValueError(
            f"patient_rule={rule!r} is not a regular expression ({exc}); give auto, stem or a regex whose "
            f"first group is the patient, e.g. --option 'patient_rule=^(.*\\d)[a-z]?$'"
        ) from None
    return rule


def _binary_positive(found: list[str]) -> str | None:
    """The positive class of a normal/abnormal pair of class folders, or None."""
    normal = [c for c in found if is_normal_name(c)]
    return next(c for c in found if c not in normal) if len(found) == 2 and len(normal) == 1 else None


def _mask_for(path: Path) -> Path | None:
    if path.parent.name.lower() not in GENERIC_DIRS:
        return None
    for d in MASK_DIRS:
        for candidate in (path.parent.parent / d / path.name, path.parent.parent / d / f"{path.stem}.png"):
            if candidate.is_file():
                return candidate
    return None


@READERS.register("folder")
def read(
    root: Path,
    pneumonia_subtypes: bool = False,
    positive: str | None = None,
    classes: str | list[str] | None = None,
    masks: bool = True,
    mask_label: str = "Lungs",
    multiclass: bool = False,
    patient_rule: str = "auto",
) -> ImageTable:
    """Read a class-per-folder tree of PNG/JPEG/DICOM images (see the module docstring).

    Options: ``pneumonia_subtypes`` (Kermany 3-class), ``positive`` (binary task for that class),
    ``classes`` (keep only these classes, in this order; other labelled images are dropped),
    ``masks`` (attach sibling ``masks/`` files), ``mask_label``, ``multiclass`` (keep a
    normal/abnormal pair of folders as two one-hot classes instead of one binary label),
    ``patient_rule`` (``auto``, ``stem`` or a regex: how file names give the patient).
    """
    patient_rule = _patient_rule(patient_rule)
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; the folder reader needs a tree of class folders")
    skipped: list[dict] = []
    files = walk_files(root, IMAGE_EXTENSIONS, prune=is_mask_dir, skipped=skipped)
    if not files:
        unread = (
            f" ({len(skipped)} files/folders skipped, e.g. {skipped[0]['path']}: {skipped[0]['reason']})"
            if skipped
            else ""
        )
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}{unread}; "
            f"point --root at the dataset folder"
        )
    notes: list[str] = []
    if skipped:
        notes.append(
            f"{len(skipped)} files/folders skipped: "
            + "; ".join(f"{k['path']} ({k['reason']})" for k in skipped[:5])
            + (" ..." if len(skipped) > 5 else "")
        )
    split, cls, odd = [], [], []
    for f in files:
        s, c = _split_and_class(f.relative_to(root).parts[:-1])
        if pneumonia_subtypes and c is not None:
            sub = _subtype(c, f.name)
            if sub is None:
                odd.append(f.name)
            c = sub
        split.append(s)
        cls.append(c)
    if odd:
        notes.append(
            f"pneumonia_subtypes: {len(odd)} PNEUMONIA files name neither bacteria nor virus "
            f"(e.g. {odd[0]}); their label is unknown (NaN)"
        )

    found = sorted({c for c in cls if c is not None})
    wanted = as_list(classes)
    keep = np.ones(len(files), dtype=bool)
    if wanted is not None:
        unknown = [c for c in wanted if c not in found]
        if unknown:
            raise ValueError(f"classes {unknown} are not folders under {root}; found classes {found}")
        keep = np.array([c is None or c in wanted for c in cls])
        if (~keep).any():
            notes.append(f"dropped {int((~keep).sum())} images of classes not in {wanted}")
        found = list(wanted)
    files = [f for f, k in zip(files, keep, strict=True) if k]
    split = [s for s, k in zip(split, keep, strict=True) if k]
    cls = [c for c, k in zip(cls, keep, strict=True) if k]

    unlabeled = sum(c is None for c in cls)
    if unlabeled:
        notes.append(
            f"{unlabeled} images sit outside any class folder (directly under the root or a split/images "
            f"folder): listed with unknown (NaN) labels"
        )
    if positive is None and not multiclass:
        positive = _binary_positive(found)
        if positive is not None:
            notes.append(
                f"two class folders, {[c for c in found if c != positive][0]!r} normal-like: binary task "
                f"{positive!r} (set multiclass=true for two one-hot classes)"
            )
    if positive is not None:
        if positive not in found:
            raise ValueError(f"positive={positive!r} is not a class under {root}; classes found: {found}")
        labels = np.array([[np.nan if c is None else float(c == positive)] for c in cls], dtype=np.float32)
        label_names, task = [positive], "binary"
        notes.append(f"binary: {positive} = 1, other classes ({[c for c in found if c != positive]}) = 0")
    else:
        labels = one_hot(cls, found).reshape(len(cls), len(found))
        label_names, task = found, "multiclass"
        notes.append(
            f"multiclass one-hot over class folders {found}" if found else "no class folders: no labels"
        )

    ids = [f.relative_to(root).as_posix() for f in files]
    patients = [patient_of(f, patient_rule) for f in files]
    if patient_rule not in PATIENT_RULES:
        unmatched = sum(re.search(patient_rule, f.stem) is None for f in files)
        notes.append(
            f"patient_rule={patient_rule!r}: {len(set(patients))} patients"
            + (f"; {unmatched} file names do not match it (each its own patient)" if unmatched else "")
        )
    frame = make_frame(
        image_id=ids,
        path=[str(f) for f in files],
        patient_id=patients,
        view="",
        split=split,
        class_folder=[c or "" for c in cls],
    )
    mask_table = empty_masks()
    if masks:
        rows = []
        for i, f in zip(ids, files, strict=True):
            m = _mask_for(f)
            if m is not None:
                rows.append(
                    {
                        "image_id": i,
                        "label": mask_label,
                        "kind": "png",
                        "ref": str(m),
                        "height": np.nan,
                        "width": np.nan,
                    }
                )
        if rows:
            mask_table = pd.DataFrame(rows, columns=list(mask_table.columns))
            notes.append(
                f"{len(rows)} masks from sibling masks/ folders (label {mask_label!r}; size = the mask file's)"
            )
    log.info("folder %s: %d images, classes %s", root, len(files), found)
    return ImageTable(
        source="folder",
        frame=frame,
        label_names=label_names,
        labels=labels,
        task=task,
        masks=mask_table,
        root=root,
        notes=notes,
        skipped=skipped,
    )

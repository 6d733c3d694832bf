"""The data contract, checked on every registered reader (issue 8).

Parametrised over ``list_readers()``: a new reader is tested the moment its module registers it,
on the tiny dataset its builder in ``reader_examples.py`` writes, and fails here, naming itself,
while it has none. The checks are the contract of ``chestxai.data.table``, not any one reader's
behaviour (each reader's own ``test_reader_<name>.py`` tests that).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reader_examples import EXAMPLES, Example, build_example

import chestxai.data.readers as readers_pkg
from chestxai.data.readers import READERS, list_readers, read_table
from chestxai.data.table import BOX_COLUMNS, FRAME_COLUMNS, MASK_COLUMNS, ImageTable
from chestxai.tasks import TASKS

SPLITS = {"train", "val", "test", ""}


def _read(name: str, tmp_path: Path) -> tuple[ImageTable, Example]:
    try:
        ex = build_example(name, tmp_path / name)
    except LookupError as exc:  # a reader without an example must not pass by being skipped
        pytest.fail(str(exc))
    return read_table(name, ex.root, **ex.options), ex


def _strings(frame: pd.DataFrame, column: str, name: str) -> None:
    bad = [v for v in frame[column] if not isinstance(v, str)]
    assert not bad, f"{name}: column {column!r} must hold str, found {type(bad[0]).__name__} {bad[0]!r}"


@pytest.mark.parametrize("name", list_readers())
def test_frame_and_ids(name, tmp_path):
    t, ex = _read(name, tmp_path)
    assert t.source == name and len(t) == ex.rows, f"{name}: {len(t)} rows, the example has {ex.rows}"
    assert list(t.frame.columns[: len(FRAME_COLUMNS)]) == list(FRAME_COLUMNS)
    for c in FRAME_COLUMNS:
        _strings(t.frame, c, name)
    assert t.frame["image_id"].is_unique and (t.frame["image_id"] != "").all()
    pid = t.frame["patient_id"]
    assert (pid != "").all() and not pid.str.lower().isin(["nan", "none"]).any(), f"{name}: blank patient ids"
    assert set(t.frame["split"]) <= SPLITS
    assert isinstance(t.root, Path) and t.root.is_dir()
    assert all(isinstance(n, str) for n in t.notes) and all({"path", "reason"} <= set(s) for s in t.skipped)
    if t.arrays is None:
        assert all(Path(p).is_absolute() for p in t.frame["path"]), f"{name}: paths must be absolute"
    else:
        assert t.arrays.dtype == np.uint8 and t.arrays.ndim == 3 and len(t.arrays) == len(t)


@pytest.mark.parametrize("name", list_readers())
def test_labels_match_the_task(name, tmp_path):
    t, _ = _read(name, tmp_path)
    assert t.labels.dtype == np.float32 and t.labels.shape == (len(t), len(t.label_names))
    assert len(set(t.label_names)) == len(t.label_names) and all(isinstance(n, str) for n in t.label_names)
    known = t.labels[~np.isnan(t.labels)]
    assert np.isin(known, [0.0, 1.0]).all(), f"{name}: labels other than 0, 1, NaN: {np.unique(known)}"
    assert t.task in TASKS
    if t.task == "binary":
        assert t.labels.shape[1] == 1
    if t.task == "multiclass":
        assert len(t.label_names) >= 2
        rows = t.labels[~np.isnan(t.labels).all(axis=1)]
        assert not np.isnan(rows).any() and (rows.sum(axis=1) == 1).all(), f"{name}: rows are not one-hot"
    counted = t.counts()
    assert all(sum(v.values()) == len(t) for v in counted.values())


@pytest.mark.parametrize("name", list_readers())
def test_side_tables(name, tmp_path):
    t, ex = _read(name, tmp_path)
    ids = set(t.frame["image_id"])
    assert list(t.boxes.columns[: len(BOX_COLUMNS)]) == list(BOX_COLUMNS)
    assert list(t.masks.columns[: len(MASK_COLUMNS)]) == list(MASK_COLUMNS)
    assert not ex.boxes or len(t.boxes), f"{name}: the example's boxes were not read"
    assert not ex.masks or len(t.masks), f"{name}: the example's masks were not read"
    if len(t.boxes):
        assert set(t.boxes["image_id"]) <= ids
        xywh = t.boxes[list("xywh")].to_numpy(dtype=np.float64)
        x, y, w, h = xywh.T
        # fractions of the image, top-left origin: the stated convention of chestxai.data.table
        assert (w > 0).all() and (h > 0).all() and (x >= 0).all() and (y >= 0).all()
        assert (x + w <= 1 + 1e-9).all() and (y + h <= 1 + 1e-9).all(), f"{name}: boxes are not fractions"
    if len(t.masks):
        assert set(t.masks["image_id"]) <= ids
        assert set(t.masks["kind"]) <= {"rle", "png"}
        png = t.masks[t.masks["kind"] == "png"]
        assert all(Path(r).is_file() for r in png["ref"])
        rle = t.masks[t.masks["kind"] == "rle"]
        assert (rle["height"].astype(int) > 0).all() and (rle["width"].astype(int) > 0).all()
    first = t.subset([0])  # side tables follow the rows they belong to
    assert len(first) == 1 and set(first.boxes["image_id"]) <= {t.frame["image_id"][0]}


@pytest.mark.parametrize("name", list_readers())
def test_reading_twice_gives_the_same_table(name, tmp_path):
    a, ex = _read(name, tmp_path)
    b = read_table(name, ex.root, **ex.options)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_one_module_registers_one_reader():
    """Readers are added with ``@READERS.register`` in a file of their own (the extension idiom)."""
    names = list_readers()
    modules = {
        f"{readers_pkg.__name__}.{m.name}"
        for m in pkgutil.iter_modules(readers_pkg.__path__)
        if not m.name.startswith("_")
    }
    owner = {n: READERS.get(n).__module__ for n in names}
    assert sorted(owner.values()) == sorted(modules), "each reader module registers exactly one reader"
    for mod in modules:
        assert callable(getattr(importlib.import_module(mod), "read", None)), f"{mod} has no read()"


def test_every_example_belongs_to_a_reader():
    assert set(EXAMPLES) <= set(list_readers()), "an example names a reader that is not registered"


def test_a_reader_without_an_example_is_named(tmp_path):
    with pytest.raises(LookupError, match="'brand-new' is registered but has no example"):
        build_example("brand-new", tmp_path)

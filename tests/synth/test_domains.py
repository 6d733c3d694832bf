"""Domains: parsing, selection on tiny prepared caches (NaN never joins), and the clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.data.cache import PreparedCache
from chestxai.synth.data import setup_domains
from chestxai.synth.domains import parse_domain, select_rows
from chestxai.synth.settings import SynthSettings
from chestxai.testing import write_tiny_cache

NAN = np.nan
# rows: 0 PTX, 1 nothing, 2 PTX unknown, 3 Effusion, 4 both, 5 Effusion unknown
MULTI = np.array([[1, 0], [0, 0], [NAN, 0], [0, 1], [1, 1], [0, NAN]], np.float32)


def cache_of(tmp_path, labels, names, task, size=32, name="c", split=None):
    images = np.random.default_rng(0).integers(0, 255, (len(labels), size, size), dtype=np.uint8)
    return PreparedCache(write_tiny_cache(tmp_path / name, images, labels, names, task, split=split))


def test_parsing():
    assert parse_domain("Pneumothorax").kind == "present"
    spec = parse_domain(" not:Pneumothorax ")
    assert (spec.label, spec.present, spec.kind) == ("Pneumothorax", False, "absent")
    assert parse_domain("No Finding").kind == "no_finding" and parse_domain("no finding").label is None
    for bad in ("", "  ", "not:"):
        with pytest.raises(ValueError, match="domain"):
            parse_domain(bad)


def test_multilabel_selection_leaves_unknown_labels_out(tmp_path):
    cache = cache_of(tmp_path, MULTI, ["Pneumothorax", "Effusion"], "multilabel")
    rows = np.arange(6)
    pick = {t: list(select_rows(cache, parse_domain(t), rows)) for t in
            ("Pneumothorax", "not:Pneumothorax", "No Finding", "Effusion", "not:Effusion")}  # fmt: skip
    assert pick == {
        "Pneumothorax": [0, 4],
        "not:Pneumothorax": [1, 3, 5],  # row 2 (unknown) is in neither
        "No Finding": [1],  # rows 2 and 5 have an unknown label
        "Effusion": [3, 4],
        "not:Effusion": [0, 1, 2],
    }
    assert list(select_rows(cache, parse_domain("Pneumothorax"), np.array([3, 4, 5]))) == [
        4
    ]  # within the split


def test_binary_and_multiclass_classes(tmp_path):
    binary = cache_of(
        tmp_path, np.array([[1], [0], [1], [NAN]], np.float32), ["Pneumonia"], "binary", name="b"
    )
    rows = np.arange(4)
    assert list(select_rows(binary, parse_domain("Pneumonia"), rows)) == [0, 2]
    assert list(select_rows(binary, parse_domain("not:Pneumonia"), rows)) == [1]  # PneumoniaMNIST normal
    assert list(select_rows(binary, parse_domain("No Finding"), rows)) == [1]
    onehot = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    multi = cache_of(tmp_path, onehot, ["COVID", "Normal", "Viral"], "multiclass", name="m")
    assert list(select_rows(multi, parse_domain("COVID"), rows)) == [0]
    assert list(select_rows(multi, parse_domain("No Finding"), rows)) == [1, 3]  # the normal-like class
    assert list(select_rows(multi, parse_domain("not:Normal"), rows)) == [0, 2]
    literal = cache_of(
        tmp_path, np.eye(2, dtype=np.float32)[[0, 1, 1]], ["No Finding", "Mass"], "multiclass", name="l"
    )
    assert list(select_rows(literal, parse_domain("No Finding"), np.arange(3))) == [
        0
    ]  # a class of that name wins
    nonormal = cache_of(
        tmp_path, np.eye(2, dtype=np.float32)[[0, 1]], ["COVID", "Viral"], "multiclass", name="n"
    )
    with pytest.raises(ValueError, match="normal-like class"):
        select_rows(nonormal, parse_domain("No Finding"), np.arange(2))


def test_unknown_label_lists_the_labels_and_empty_domain_names_split_and_counts(tmp_path):
    cache = cache_of(tmp_path, MULTI, ["Pneumothorax", "Effusion"], "multilabel")
    with pytest.raises(
        ValueError, match=r"'Pneumothorx'.*did you mean 'Pneumothorax'.*Pneumothorax, Effusion"
    ):
        select_rows(cache, parse_domain("Pneumothorx"), np.arange(6))
    with pytest.raises(
        ValueError, match=r"domain 'Pneumothorax' is empty in the val split .*0 of its 2 images"
    ):
        select_rows(cache, parse_domain("Pneumothorax"), np.array([1, 3]), "val")


SPLIT = ["train"] * 6 + ["val"] * 2 + ["test"] * 2


def blob_labels(n=10):
    return (np.arange(n) % 2).astype(np.float32)[:, None]


def test_a_second_source_of_another_size_is_refused_naming_both_sizes(tmp_path):
    a = cache_of(tmp_path, blob_labels(), ["Blob"], "binary", size=32, name="a", split=SPLIT)
    b = cache_of(tmp_path, blob_labels(), ["Blob"], "binary", size=64, name="b", split=SPLIT)
    s = SynthSettings(cache_dir=str(a.path), cache_dir_b=str(b.path), domain_a="not:Blob", domain_b="Blob")
    with pytest.raises(ValueError, match=r"32 px.*64 px.*one --size"):
        setup_domains(s, progress=False)
    same = cache_of(tmp_path, blob_labels(), ["Blob"], "binary", size=32, name="b32", split=SPLIT)
    data, resolved = setup_domains(
        SynthSettings(
            cache_dir=str(a.path), cache_dir_b=str(same.path), domain_a="not:Blob", domain_b="Blob"
        ),
        progress=False,
    )
    assert resolved.cache_dir_b == str(same.path.resolve()) and data.size == 32
    frame = data.splits_frame()
    assert set(frame["domain"]) == {"a", "b"} and set(frame["split"]) == {"train", "val", "test"}


def test_empty_and_overlapping_domains_in_training_are_clear_errors(tmp_path):
    cache = cache_of(tmp_path, blob_labels(), ["Blob"], "binary", name="c", split=SPLIT)
    with pytest.raises(ValueError, match="--size 64 but the prepared cache"):
        setup_domains(SynthSettings(cache_dir=str(cache.path), size=64, domain_a="Blob", domain_b="not:Blob"))
    labels = np.zeros((10, 2), np.float32)
    labels[:, 0] = 1
    labels[::2, 1] = 1
    both = cache_of(tmp_path, labels, ["Mass", "Nodule"], "multilabel", name="o", split=SPLIT)
    with pytest.raises(ValueError, match="share 3 training images"):
        setup_domains(
            SynthSettings(cache_dir=str(both.path), domain_a="Mass", domain_b="Nodule"), progress=False
        )
    with pytest.raises(ValueError, match=r"domain 'not:Mass' is empty in the train split"):
        setup_domains(
            SynthSettings(cache_dir=str(both.path), domain_a="not:Mass", domain_b="Nodule"), progress=False
        )

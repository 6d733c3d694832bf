"""Issue 20 #9, patient leakage: the COVID collections' letter suffix (``COVID-00039a/b/c``: one
patient) in the folder reader, a patient column in CSV manifests (``source_patient`` of
``synth generate``), and a ``NAME``/``not:NAME`` label column loading as the binary finding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chestxai.data.readers import read_table
from chestxai.data.splits import make_splits


def _img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(path)
    return path


def _split_of_each_row(t, seed: int) -> np.ndarray:
    parts = make_splits(
        t.labels, t.frame["patient_id"].to_numpy(), task=t.task, val=0.25, test=0.25, seed=seed
    )
    split = np.empty(len(t), dtype=object)
    for name, rows in parts.items():
        split[rows] = name
    return split


@pytest.fixture
def covid_tree(tmp_path) -> Path:
    """12 COVID patients with 3 images each (a/b/c) and 12 normal patients with one."""
    for p in range(12):
        for s in "abc":
            _img(tmp_path / "COVID" / f"COVID-{p:05d}{s}.png")
        _img(tmp_path / "Normal" / f"Normal-{p}.png")
    return tmp_path


def test_letter_suffix_images_are_one_patient_on_one_side_of_every_split(covid_tree):
    t = read_table("folder", covid_tree)
    series = t.frame["image_id"].str.extract(r"(COVID-\d+)[abc]\.png$")[0]  # a/b/c of one patient
    for seed in range(5):
        split = _split_of_each_row(t, seed)
        assert len(set(split)) == 3
        assert (t.frame.assign(split=split, series=series).groupby("series")["split"].nunique() == 1).all(), (
            seed
        )
    pid = dict(zip(t.frame["image_id"], t.frame["patient_id"], strict=True))
    assert {pid[f"COVID/COVID-00003{s}.png"] for s in "abc"} == {"COVID-00003"}
    assert t.frame["patient_id"].nunique() == 24


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("COVID-00039a.png", "COVID-00039"),
        ("lancet-case2b.jpg", "lancet-case2"),  # ieee8023 collection: patientid 6 for a and b
        ("nejmc2001573_f1a.jpeg", "nejmc2001573_f1"),
        ("COVID-12.png", "COVID-12"),  # no suffix: the stem
        ("person1_bacteria_1.jpeg", "person1"),  # Kermany rules first
        ("01E392EE-69F9-4E33-BFCE-E5C968654078.jpeg", "01E392EE-69F9-4E33-BFCE-E5C968654078"),
    ],
)
def test_patient_rule_auto(name, patient):
    from chestxai.data.readers.folder import patient_of

    assert patient_of(Path(name)) == patient


def test_patient_rule_can_be_turned_off_or_given_as_a_regex(covid_tree):
    assert read_table("folder", covid_tree, patient_rule="stem").frame["patient_id"].nunique() == 48
    t = read_table("folder", covid_tree, patient_rule=r"^(COVID-\d+)")
    assert t.frame["patient_id"].nunique() == 24  # 12 COVID by the regex, 12 Normal unmatched (stems)
    assert any("12 file names do not match" in n for n in t.notes)
    with pytest.raises(ValueError, match=r"patient_rule='\(' is not a regular expression"):
        read_table("folder", covid_tree, patient_rule="(")


@pytest.mark.parametrize("column", ["patient_id", "Patient", "source_patient", "patientid"])
def test_csv_reader_uses_a_patient_column_when_present(tmp_path, column):
    m = tmp_path / "m.csv"
    m.write_text(f"path,label,{column}\na.png,x,p1\nb.png,y,p1\nc.png,x,\nd.png,y,p2\n")
    t = read_table("csv", m)
    assert t.frame["patient_id"].tolist() == ["p1", "p1", "c", "p2"]  # blank: its own patient (the stem)
    assert read_table("csv", m, patient_col="none").frame["patient_id"].tolist() == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["not:Pneumonia", "not:Pneumonia"], [0, 0]),  # synth generate b2a: the normal domain
        (["Pneumonia", "Pneumonia"], [1, 1]),  # a2b
        (["Pneumonia", "not:Pneumonia"], [1, 0]),
    ],
)
def test_name_and_not_name_load_as_the_binary_finding(tmp_path, values, expected):
    m = tmp_path / "m.csv"
    m.write_text("path,label\n" + "".join(f"{i}.png,{v}\n" for i, v in enumerate(values)))
    t = read_table("csv", m)
    assert t.task == "binary" and t.label_names == ["Pneumonia"]
    np.testing.assert_array_equal(t.labels[:, 0], expected)


def test_other_single_label_columns_stay_multiclass(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("path,label\na.png,NORMAL\nb.png,NORMAL\n")
    assert read_table("csv", m).task == "multiclass"  # a lone normal-like value is no finding
    m.write_text("path,label\na.png,not:A\nb.png,B\n")
    assert read_table("csv", m).label_names == ["B", "not:A"]  # two names: not one finding

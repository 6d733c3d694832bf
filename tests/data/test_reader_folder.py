"""The folder reader on tiny Kermany-like and COVID-19-Radiography-like trees (synthetic files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chestxai.data.readers import read_table


def _img(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)
    return path


@pytest.fixture
def kermany(tmp_path) -> Path:
    root = tmp_path / "chest_xray"
    for split in ("train", "test", "val"):
        _img(root / split / "NORMAL" / f"IM-0001-000{len(split)}.jpeg")
        _img(root / split / "PNEUMONIA" / f"person1{len(split)}_bacteria_1.jpeg")
        _img(root / split / "PNEUMONIA" / f"person2{len(split)}_virus_2.jpeg")
    _img(root / "train" / "PNEUMONIA" / "person99_bacteria_3.jpeg")
    (root / "train" / "PNEUMONIA" / "._person99_bacteria_3.jpeg").write_bytes(b"junk")  # macOS junk
    _img(root / "__MACOSX" / "train" / "NORMAL" / "IM-9.jpeg")
    (root / "train" / "NORMAL" / "notes.txt").write_text("not an image")
    return root


def test_kermany_two_classes_with_splits(kermany):
    t = read_table("folder", kermany)
    assert t.task == "multiclass"
    assert t.label_names == ["NORMAL", "PNEUMONIA"]
    assert len(t) == 10
    assert t.frame["split"].value_counts().to_dict() == {"train": 4, "test": 3, "val": 3}
    row = t.frame.index[t.frame["image_id"] == "train/PNEUMONIA/person99_bacteria_3.jpeg"][0]
    assert t.frame.loc[row, "patient_id"] == "person99"
    np.testing.assert_array_equal(t.labels[row], [0, 1])
    normal = t.frame.index[t.frame["image_id"] == "train/NORMAL/IM-0001-0005.jpeg"][0]
    assert t.frame.loc[normal, "patient_id"] == "IM-0001-0005"  # the file stem
    assert Path(t.frame.loc[normal, "path"]).is_absolute() and Path(t.frame.loc[normal, "path"]).exists()
    assert np.all(t.labels.sum(axis=1) == 1)


def test_kermany_pneumonia_subtypes(kermany):
    t = read_table("folder", kermany, pneumonia_subtypes=True)
    assert t.label_names == ["NORMAL", "PNEUMONIA_BACTERIA", "PNEUMONIA_VIRUS"]
    c = t.counts()
    assert (
        c["NORMAL"]["positive"],
        c["PNEUMONIA_BACTERIA"]["positive"],
        c["PNEUMONIA_VIRUS"]["positive"],
    ) == (3, 4, 3)


def test_subtype_without_hint_is_unknown(kermany):
    _img(kermany / "train" / "PNEUMONIA" / "person5_other.jpeg")
    t = read_table("folder", kermany, pneumonia_subtypes=True)
    row = t.frame.index[t.frame["image_id"].str.endswith("person5_other.jpeg")][0]
    assert np.isnan(t.labels[row]).all()
    assert any("neither bacteria nor virus" in n for n in t.notes)


def test_binary_positive_and_class_choice(kermany):
    t = read_table("folder", kermany, positive="PNEUMONIA")
    assert t.task == "binary" and t.label_names == ["PNEUMONIA"]
    assert t.counts()["PNEUMONIA"] == {"positive": 7, "negative": 3, "unknown": 0}
    with pytest.raises(ValueError, match="classes found"):
        read_table("folder", kermany, positive="COVID")
    t = read_table("folder", kermany, classes="PNEUMONIA")
    assert len(t) == 7 and t.label_names == ["PNEUMONIA"]


def test_covid_radiography_tree_with_masks(tmp_path):
    root = tmp_path / "COVID-19_Radiography_Dataset"
    for cls in ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"):
        for i in (1, 2):
            _img(root / cls / "images" / f"{cls}-{i}.png")
            _img(root / cls / "masks" / f"{cls}-{i}.png", 255)
    (root / "COVID.metadata.xlsx").write_bytes(b"")
    t = read_table("folder", root)
    assert t.label_names == ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
    assert len(t) == 8  # mask images are not listed as X-rays
    assert not t.frame["path"].str.contains("/masks/").any()
    assert len(t.masks) == 8 and set(t.masks["kind"]) == {"png"} and set(t.masks["label"]) == {"Lungs"}
    assert set(t.masks["image_id"]) == set(t.frame["image_id"])
    assert read_table("folder", root, masks=False).masks.empty


def test_loose_images_and_dicom_are_listed_unlabelled(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "b.dcm").write_bytes(b"\0" * 132 + b"DICM")  # listed by extension, not decoded here
    _img(tmp_path / "cls" / "c.jpg")
    t = read_table("folder", tmp_path)
    assert len(t) == 3 and t.label_names == ["cls"]
    unknown = t.frame["image_id"].isin(["a.png", "b.dcm"]).to_numpy()
    assert np.isnan(t.labels[unknown]).all()
    assert t.labels[~unknown].tolist() == [[1.0]]

    only_loose = tmp_path / "loose"
    _img(only_loose / "x.png")
    t = read_table("folder", only_loose)
    assert len(t) == 1 and t.label_names == [] and t.labels.shape == (1, 0)


def test_missing_or_empty_root_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_table("folder", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        read_table("folder", tmp_path / "empty")

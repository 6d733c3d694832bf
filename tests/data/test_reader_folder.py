"""The folder reader on tiny Kermany-like and COVID-19-Radiography-like trees (synthetic files)."""

from __future__ import annotations

import errno
import logging
import os
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
    t = read_table("folder", kermany, multiclass=True)
    assert t.task == "multiclass"
    assert t.label_names == ["NORMAL", "PNEUMONIA"]
    assert len(t) == 10
    assert t.frame["split"].value_counts().to_dict() == {"train": 4, "test": 3, "val": 3}
    row = t.frame.index[t.frame["image_id"] == "train/PNEUMONIA/person99_bacteria_3.jpeg"][0]
    assert t.frame.loc[row, "patient_id"] == "person99"
    np.testing.assert_array_equal(t.labels[row], [0, 1])
    normal = t.frame.index[t.frame["image_id"] == "train/NORMAL/IM-0001-0005.jpeg"][0]
    assert t.frame.loc[normal, "patient_id"] == "IM-0001"  # Kermany NORMAL: IM-<patient>-<image>
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


# --- issue 9 #11: a NORMAL/PNEUMONIA tree is a binary task out of the box ----------------------
def test_kermany_two_folders_default_to_binary(kermany):
    t = read_table("folder", kermany)
    assert t.task == "binary" and t.label_names == ["PNEUMONIA"]  # was multiclass over 2 columns
    assert t.counts()["PNEUMONIA"] == {"positive": 7, "negative": 3, "unknown": 0}
    same = read_table("folder", kermany, positive="PNEUMONIA")
    np.testing.assert_array_equal(t.labels, same.labels)
    assert any("normal-like" in n for n in t.notes)


@pytest.mark.parametrize("normal", ["Normal", "No_Finding", "no finding", "healthy", "health", "NEGATIVE"])
def test_any_normal_like_folder_makes_the_pair_binary(tmp_path, normal):
    _img(tmp_path / normal / "a.png")
    _img(tmp_path / "Effusion" / "b.png")
    t = read_table("folder", tmp_path)
    assert t.task == "binary" and t.label_names == ["Effusion"]
    assert t.labels[:, 0].tolist() == [1.0, 0.0]  # sorted ids: Effusion/b.png, then the normal one


def test_two_folders_without_a_normal_one_stay_multiclass(tmp_path):
    _img(tmp_path / "COVID" / "a.png")
    _img(tmp_path / "Viral Pneumonia" / "b.png")
    t = read_table("folder", tmp_path)
    assert t.task == "multiclass" and t.label_names == ["COVID", "Viral Pneumonia"]


def test_choosing_two_classes_with_a_normal_one_is_binary(tmp_path):
    for cls in ("COVID", "Normal", "Lung_Opacity"):
        _img(tmp_path / cls / "images" / f"{cls}.png")
    assert read_table("folder", tmp_path).task == "multiclass"
    t = read_table("folder", tmp_path, classes="Normal,COVID")
    assert t.task == "binary" and t.label_names == ["COVID"] and len(t) == 2


# --- issue 8: Kermany NORMAL patient ids from the file name ------------------------------------
@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person1_bacteria_1.jpeg", "person1"),
        ("person1_virus_6.jpeg", "person1"),
        ("person1000_bacteria_2931.jpeg", "person1000"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
        ("COVID-12.png", "COVID-12"),  # COVID-19 Radiography: no patient in the name -> the stem
        ("00000001_000.png", "00000001_000"),
    ],
)
def test_patient_ids_from_kermany_names(name, patient):
    from chestxai.data.readers.folder import patient_of

    assert patient_of(Path(name)) == patient


def test_no_normal_patient_spans_two_splits(tmp_path):
    from chestxai.data.splits import make_splits

    for p in range(6):
        for i in range(1, 4):
            _img(tmp_path / "NORMAL" / f"IM-{p:04d}-{i:04d}.jpeg")
            _img(tmp_path / "NORMAL" / f"NORMAL2-IM-{p:04d}-{i:04d}.jpeg")
        _img(tmp_path / "PNEUMONIA" / f"person{p}_bacteria_{p}.jpeg")
    t = read_table("folder", tmp_path)
    assert t.frame["patient_id"].nunique() == 18  # 6 IM-, 6 NORMAL2-IM-, 6 person
    parts = make_splits(t.labels, t.frame["patient_id"].to_numpy(), task=t.task, val=0.3, test=0.3, seed=0)
    split = np.empty(len(t), dtype=object)
    for name, rows in parts.items():
        split[rows] = name
    assert len(set(split)) == 3
    assert (t.frame.assign(split=split).groupby("patient_id")["split"].nunique() == 1).all()


# --- issue 9 #10: symlinked class folders are followed, loops are not -------------------------
def test_symlinked_class_folder_is_read_and_loops_stop(tmp_path, caplog):
    outside = tmp_path / "elsewhere" / "pneumonia_images"
    _img(outside / "person1_bacteria_1.jpeg")
    _img(outside / "person2_virus_1.jpeg")
    root = tmp_path / "chest_xray"
    _img(root / "NORMAL" / "IM-0001-0001.jpeg")
    (root / "PNEUMONIA").symlink_to(outside, target_is_directory=True)
    (outside / "loop").symlink_to(outside, target_is_directory=True)  # a loop below the link
    (root / "NORMAL" / "up").symlink_to(root, target_is_directory=True)  # a loop to the root
    with caplog.at_level(logging.WARNING):
        t = read_table("folder", root)
    assert sorted(t.frame["class_folder"]) == ["NORMAL", "PNEUMONIA", "PNEUMONIA"]  # the class was dropped
    assert t.task == "binary" and t.labels[:, 0].sum() == 2
    assert len(t) == 3 and t.frame["path"].is_unique  # each image once, however many ways lead to it
    reasons = {Path(s["path"]).name: s["reason"] for s in t.skipped}
    assert set(reasons) == {"loop", "up"} and all("symlink" in r for r in reasons.values())
    assert "loop" in caplog.text and any("folders skipped" in n for n in t.notes)


def test_second_link_to_the_same_folder_lists_it_once(tmp_path):
    shared = tmp_path / "pool"
    _img(shared / "a.png")
    root = tmp_path / "root"
    _img(root / "Normal" / "n.png")
    (root / "Effusion").symlink_to(shared, target_is_directory=True)
    (root / "Zeffusion").symlink_to(shared, target_is_directory=True)
    t = read_table("folder", root)
    assert len(t) == 2 and t.label_names == ["Effusion"]
    assert [Path(s["path"]).name for s in t.skipped] == ["Zeffusion"]


# --- issue 9 (weaker): an unreadable sub-folder is listed, not silently skipped ----------------
def test_unreadable_subfolder_is_listed(tmp_path, monkeypatch, caplog):
    _img(tmp_path / "Normal" / "a.png")
    _img(tmp_path / "Effusion" / "b.png")
    locked = tmp_path / "Mass"
    _img(locked / "c.png")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads through mode 000: make os.walk fail as it would
            real_scandir = os.scandir

            def scandir(path="."):
                # an int is a directory fd (pytest's tmp_path clean-up walks with them)
                if not isinstance(path, int) and os.fspath(path) == str(locked):
                    raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
                return real_scandir(path)

            monkeypatch.setattr(os, "scandir", scandir)
        with caplog.at_level(logging.WARNING):
            t = read_table("folder", tmp_path)
    finally:
        locked.chmod(0o755)
    assert len(t) == 2 and "Mass" not in t.label_names
    assert [s["path"] for s in t.skipped] == [str(locked)]
    assert "not readable" in t.skipped[0]["reason"] and str(locked) in caplog.text
    assert any(str(locked) in n for n in t.notes)

"""The NIH ChestX-ray14 reader on a tiny synthetic copy of the release layout."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from chestxai.data.readers import read_table
from chestxai.data.readers.nih import LABELS

ENTRY = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
    "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,\n"
    "00000002_000.png,No Finding,0,2,81,M,AP,2500,2048,0.171,0.171,\n"
    "00000003_000.png,Infiltration|Effusion,0,3,74,F,PA,2500,2048,0.168,0.168,\n"
)
BBOX_RELEASE = (
    "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
    "00000003_000.png,Infiltrate,512,256,102.4,51.2,,,\n"
    "00000003_000.png,Effusion,0,0,1024,1024,,,\n"
    "99999999_000.png,Mass,1,1,1,1,,,\n"
)


def _dataset(root: Path, compress: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    name = "Data_Entry_2017.csv"
    if compress == ".gz":
        (root / (name + ".gz")).write_bytes(gzip.compress(ENTRY.encode()))
    elif compress == ".zip":
        with zipfile.ZipFile(root / (name + ".zip"), "w") as z:
            z.writestr(name, ENTRY)
    else:
        (root / name).write_text(ENTRY)
    return root


@pytest.mark.parametrize("compress", ["", ".gz", ".zip"])
def test_labels_patients_views(tmp_path, compress):
    t = read_table("nih", _dataset(tmp_path / "nih", compress))
    assert t.task == "multilabel" and t.label_names == LABELS and len(LABELS) == 14
    assert len(t) == 4 and t.frame["patient_id"].nunique() == 3
    lab = dict(zip(t.frame["image_id"], t.labels, strict=True))
    assert lab["00000001_001.png"][LABELS.index("Emphysema")] == 1
    assert lab["00000001_001.png"].sum() == 2
    assert lab["00000002_000.png"].sum() == 0  # No Finding = all zeros
    assert t.frame["view"].tolist() == ["PA", "PA", "AP", "PA"]
    assert t.frame["split"].tolist() == [""] * 4
    assert t.frame["path"][0] == str(tmp_path / "nih" / "images" / "00000001_000.png")  # where it would be


def test_root_may_be_the_table_file(tmp_path):
    root = _dataset(tmp_path / "nih", ".gz")
    t = read_table("nih", root / "Data_Entry_2017.csv.gz")
    assert len(t) == 4 and t.root == root


def test_no_finding_column_option(tmp_path):
    t = read_table("nih", _dataset(tmp_path / "nih"), include_no_finding=True)
    assert t.label_names[-1] == "No Finding" and t.labels[:, -1].tolist() == [0, 0, 1, 0]


def test_images_split_lists_and_release_box_header(tmp_path):
    root = _dataset(tmp_path / "nih")
    for folder, name in (
        ("images_001/images", "00000001_000.png"),
        ("images_002/images", "00000003_000.png"),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(b"png")
    (root / "train_val_list.txt").write_text("00000001_000.png\n00000001_001.png\n")
    (root / "test_list.txt").write_text("00000003_000.png\n")
    (root / "BBox_List_2017.csv").write_text(BBOX_RELEASE)
    t = read_table("nih", root)
    assert t.frame["path"][0] == str(root / "images_001" / "images" / "00000001_000.png")
    assert t.frame["split"].tolist() == ["train", "train", "", "test"]
    assert any("in neither list" in n for n in t.notes)
    assert len(t.boxes) == 2  # the box of an image outside the table is dropped, with a note
    inf = t.boxes[t.boxes["label"] == "Infiltration"].iloc[0]  # 'Infiltrate' in the box file
    assert (inf["x"], inf["y"], inf["w"], inf["h"]) == pytest.approx((0.5, 0.25, 0.1, 0.05))
    eff = t.boxes[t.boxes["label"] == "Effusion"].iloc[0]
    assert (eff["x"], eff["w"]) == (0.0, 1.0)
    assert any("dropped" in n for n in t.notes)


def test_plain_box_header_variant(tmp_path):
    root = _dataset(tmp_path / "nih")
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,x,y,w,h\n00000003_000.png,Effusion,256,256,512,512\n"
    )
    t = read_table("nih", root)
    assert t.boxes[["x", "y", "w", "h"]].iloc[0].tolist() == [0.25, 0.25, 0.5, 0.5]


def test_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        read_table("nih", tmp_path / "empty")
    assert "Data_Entry_2017" in str(e.value) and str(tmp_path / "empty") in str(e.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Patient ID\na.png,Cardiomegaly|Flu,1\n"
    )
    with pytest.raises(ValueError, match="unknown finding 'Flu'"):
        read_table("nih", bad)
    (bad / "Data_Entry_2017.csv").write_text("Image,Labels\na.png,x\n")
    with pytest.raises(ValueError, match="columns"):
        read_table("nih", bad)


def test_no_split_note_names_the_command_that_makes_one(tmp_path):
    """Issue 20 item 10b: the note said "make one with splits", a command that does not exist."""
    import re

    from chestxai.config import load_config

    t = read_table("nih", _dataset(tmp_path / "nih"))
    note = next(n for n in t.notes if "no official split" in n)
    assert "`chestxai train`" in note, note
    keys = re.findall(r"--set ([\w.]+)=([\d.]+)", note)
    assert keys, note
    cfg = load_config(None, [f"{k}={v}" for k, v in keys])  # the keys the note names are real recipe keys
    assert cfg.data.val_fraction == 0.1 and cfg.data.test_fraction == 0.2

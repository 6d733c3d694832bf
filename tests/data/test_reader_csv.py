"""The CSV manifest reader in its three label forms (synthetic manifests; no images needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chestxai.data.readers import read_table


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_single_label_multiclass(tmp_path):
    m = _write(
        tmp_path / "manifest.csv",
        "file,diagnosis,pid,fold\n"
        "img/a.png,covid,p1,train\n"
        "img/b.png,normal,p1,train\n"
        "img/c.png,pneumonia,p2,valid\n"
        "/abs/d.png,,p3,test\n",
    )
    t = read_table("csv", m, path_col="file", label_col="diagnosis", patient_col="pid", split_col="fold")
    assert t.task == "multiclass" and t.label_names == ["covid", "normal", "pneumonia"]
    np.testing.assert_array_equal(t.labels[0], [1, 0, 0])
    assert np.isnan(t.labels[3]).all()  # blank label = unknown
    assert t.frame["split"].tolist() == ["train", "train", "val", "test"]
    assert t.frame["patient_id"].tolist() == ["p1", "p1", "p2", "p3"]
    assert t.frame["path"][0] == str(tmp_path / "img" / "a.png")  # relative to the csv's folder
    assert t.frame["path"][3] == "/abs/d.png"
    assert t.frame["image_id"][0] == "img/a.png"


def test_single_label_binary_with_positive_and_image_root(tmp_path):
    m = _write(tmp_path / "labels" / "m.csv", "path,label\na.png,1\nb.png,0\nc.png,1\n")
    t = read_table("csv", tmp_path / "labels", positive="1", image_root=str(tmp_path / "pics"))
    assert t.task == "binary" and t.label_names == ["1"]
    assert t.labels[:, 0].tolist() == [1, 0, 1]
    assert t.frame["path"][0] == str(tmp_path / "pics" / "a.png")
    assert t.frame["patient_id"].tolist() == ["a", "b", "c"]  # one patient per image by default
    assert t.root == m.parent
    with pytest.raises(ValueError, match="never occurs"):
        read_table("csv", m, positive="yes")


def test_multilabel_01_columns(tmp_path):
    m = _write(tmp_path / "m.csv", "path,Effusion,Mass,age\na.png,1,0,50\nb.png,0,,60\nc.png,-1,1,70\n")
    t = read_table("csv", m, label_cols="Effusion,Mass")
    assert t.task == "multilabel" and t.label_names == ["Effusion", "Mass"]
    np.testing.assert_array_equal(t.labels, np.array([[1, 0], [0, np.nan], [np.nan, 1]], np.float32))
    assert t.frame["age"].tolist() == ["50", "60", "70"]  # other columns kept as metadata
    bad = _write(tmp_path / "bad.csv", "path,Effusion\na.png,2\n")
    with pytest.raises(ValueError, match=r"column 'Effusion' row 2"):
        read_table("csv", bad, label_cols=["Effusion"])


def test_multilabel_separator_joined(tmp_path):
    m = _write(
        tmp_path / "m.csv", "path,findings\na.png,Mass|Effusion\nb.png,No Finding\nc.png,Effusion\nd.png,\n"
    )
    t = read_table("csv", m, label_col="findings", sep="|", none_label="No Finding")
    assert t.task == "multilabel" and t.label_names == ["Effusion", "Mass"]
    np.testing.assert_array_equal(t.labels[:3], [[1, 1], [0, 0], [1, 0]])
    assert np.isnan(t.labels[3]).all()


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_table("csv", tmp_path / "missing.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .csv manifest"):
        read_table("csv", tmp_path / "empty")
    m = _write(tmp_path / "one" / "m.csv", "file,y\na.png,1\n")
    with pytest.raises(ValueError, match="label_col"):
        read_table("csv", m, path_col="file")
    with pytest.raises(ValueError, match=r"columns \['path'\] not found"):
        read_table("csv", m, label_col="y")
    _write(tmp_path / "one" / "other.csv", "path,label\n")
    with pytest.raises(ValueError, match="manifest=NAME"):
        read_table("csv", tmp_path / "one")
    dup = _write(tmp_path / "dup.csv", "path,label\na.png,1\na.png,0\n")
    with pytest.raises(ValueError, match="listed twice"):
        read_table("csv", dup)
    split = _write(tmp_path / "split.csv", "path,label,s\na.png,1,holdout\n")
    with pytest.raises(ValueError, match="unknown split value 'holdout'"):
        read_table("csv", split, split_col="s")

"""The CSV manifest reader in its three label forms (synthetic manifests; no images needed)."""

from __future__ import annotations

import os
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
    opts = dict(path_col="file", label_col="diagnosis", patient_col="pid", split_col="fold")
    t = read_table("csv", m, allow_outside_root=True, **opts)
    assert t.task == "multiclass" and t.label_names == ["covid", "normal", "pneumonia"]
    np.testing.assert_array_equal(t.labels[0], [1, 0, 0])
    assert np.isnan(t.labels[3]).all()  # blank label = unknown
    assert t.frame["split"].tolist() == ["train", "train", "val", "test"]
    assert t.frame["patient_id"].tolist() == ["p1", "p1", "p2", "p3"]
    assert t.frame["path"][0] == str(tmp_path / "img" / "a.png")  # relative to the csv's folder
    assert t.frame["path"][3] == "/abs/d.png"
    assert t.frame["image_id"][0] == "img/a.png"
    assert any("outside" in n and "rows 5" in n for n in t.notes)
    with pytest.raises(ValueError, match=r"row 5 names '/abs/d.png', outside .*allow_outside_root=true"):
        read_table("csv", m, **opts)  # refused unless asked for


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
    assert t.frame["age"].tolist() == [50.0, 60.0, 70.0]  # kept, as the contract's float years
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
    with pytest.raises(ValueError, match="rows 2 and 3 name the same image"):
        read_table("csv", dup)
    dup_id = _write(tmp_path / "dup_id.csv", "path,label,id\na.png,1,x\nb.png,0,x\n")
    with pytest.raises(ValueError, match="'x' is listed twice"):
        read_table("csv", dup_id, id_col="id")
    split = _write(tmp_path / "split.csv", "path,label,s\na.png,1,holdout\n")
    with pytest.raises(ValueError, match="unknown split value 'holdout'"):
        read_table("csv", split, split_col="s")


# --- issue 9 #8: label text nan / NaN / inf is unknown, never a class or a silent negative -------
NAN_TEXT = "path,label\na.png,0\nb.png,1\nc.png,nan\nd.png,NaN\ne.png,inf\nf.png,\ng.png,-inf\nh.png,1\n"


def test_nan_text_is_unknown_not_extra_classes(tmp_path, caplog):
    m = _write(tmp_path / "m.csv", NAN_TEXT)
    t = read_table("csv", m)
    assert t.task == "multiclass" and t.label_names == ["0", "1"]  # was 5 classes: 0, 1, NaN, inf, nan
    assert np.isnan(t.labels[2:7]).all() and not np.isnan(t.labels[[0, 1, 7]]).any()
    assert "rows 4, 5, 6, 8" in caplog.text  # the CSV rows (header = row 1) that held the text
    assert any("'NaN'" in n and "unknown" in n for n in t.notes)


def test_nan_text_with_positive_is_unknown_not_negative(tmp_path):
    t = read_table("csv", _write(tmp_path / "m.csv", NAN_TEXT), positive=1)
    assert t.task == "binary"
    assert t.counts()["1"] == {"positive": 2, "negative": 1, "unknown": 5}  # was 2 / 6 / 0


def test_nan_text_in_01_columns_and_joined_labels(tmp_path):
    m = _write(tmp_path / "m.csv", "path,Mass,Edema\na.png,1,NaN\nb.png,inf,0\n")
    t = read_table("csv", m, label_cols="Mass,Edema")
    np.testing.assert_array_equal(t.labels, np.array([[1, np.nan], [np.nan, 0]], np.float32))
    j = _write(tmp_path / "j.csv", "path,f\na.png,Mass|Edema\nb.png,nan\n")
    t = read_table("csv", j, label_col="f", sep="|")
    assert t.label_names == ["Edema", "Mass"] and np.isnan(t.labels[1]).all()
    bad = _write(tmp_path / "bad.csv", "path,f\na.png,Mass|nan\n")
    with pytest.raises(ValueError, match="row 2 holds 'Mass|nan'"):
        read_table("csv", bad, label_col="f", sep="|")


def test_class_names_that_only_look_numeric_stay_classes(tmp_path):
    t = read_table("csv", _write(tmp_path / "m.csv", "path,label\na.png,1e3\nb.png,none\nc.png,Nancy\n"))
    assert t.label_names == ["1e3", "Nancy", "none"]


# --- issue 9 (weaker): manifest paths -----------------------------------------------------------
@pytest.mark.parametrize("bad", ["../x.png", "imgs/../../x.png", "/etc/passwd"])
def test_paths_outside_the_root_are_refused_naming_the_row(tmp_path, bad):
    m = _write(tmp_path / "data" / "m.csv", f"path,label\nimgs/a.png,1\n{bad},0\n")
    with pytest.raises(ValueError, match=r"row 3 names .*outside the image folder"):
        read_table("csv", m)
    t = read_table("csv", m, allow_outside_root=True)
    assert t.frame["path"][1] == str(Path(os.path.normpath(m.parent / bad)))


def test_inner_dotdot_and_absolute_paths_inside_the_root_are_fine(tmp_path):
    inside = tmp_path / "imgs" / "c.png"
    m = _write(tmp_path / "m.csv", f"path,label\n./imgs/a.png,1\nimgs/x/../b.png,0\n{inside},1\n")
    t = read_table("csv", m)
    assert t.frame["image_id"].tolist() == ["imgs/a.png", "imgs/b.png", "imgs/c.png"]
    assert t.frame["path"][0] == str(tmp_path / "imgs" / "a.png")


def test_same_file_spelled_twice_with_conflicting_labels_is_refused(tmp_path):
    m = _write(tmp_path / "m.csv", "path,label\nimgs/x.png,1\nimgs/y.png,0\n./imgs/x.png,0\n")
    with pytest.raises(ValueError, match=r"rows 2 and 4 name the same image 'imgs/x.png' with different"):
        read_table("csv", m)


def test_same_file_spelled_twice_with_equal_labels_is_merged(tmp_path, caplog):
    m = _write(tmp_path / "m.csv", "path,label,age\nimgs/x.png,1,3\nimgs/y.png,0,4\n./imgs/x.png,1,3\n")
    t = read_table("csv", m)
    assert t.frame["image_id"].tolist() == ["imgs/x.png", "imgs/y.png"]
    assert t.labels[:, 1].tolist() == [1, 0] and t.frame["age"].tolist() == [3.0, 4.0]
    assert "dropped (rows 4)" in caplog.text


def test_header_only_manifest_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        read_table("csv", _write(tmp_path / "m.csv", "path,label\n"))

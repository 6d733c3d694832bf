"""The RSNA pneumonia reader: several boxes per image, pixel -> fraction, zip table, class info."""

from __future__ import annotations

import zipfile

import pytest

from chestxai.data.readers import read_table

LABELS = (
    "patientId,x,y,width,height,Target\n"
    "aaa,,,,,0\n"
    "bbb,264.0,152.0,213.0,379.0,1\n"
    "bbb,562.0,152.0,256.0,453.0,1\n"
    "ccc,512,0,102.4,1024,1\n"
)


def test_boxes_and_labels(tmp_path):
    (tmp_path / "stage_2_train_labels.csv").write_text(LABELS)
    (tmp_path / "stage_2_train_images").mkdir()
    (tmp_path / "stage_2_train_images" / "bbb.dcm").write_bytes(b"dicom")
    (tmp_path / "stage_2_detailed_class_info.csv").write_text(
        "patientId,class\naaa,Normal\nbbb,Lung Opacity\nbbb,Lung Opacity\nccc,Lung Opacity\n"
    )
    t = read_table("rsna", tmp_path)
    assert t.task == "binary" and t.label_names == ["Pneumonia"]
    assert t.frame["image_id"].tolist() == ["aaa", "bbb", "ccc"]
    assert t.frame["patient_id"].tolist() == ["aaa", "bbb", "ccc"]
    assert t.labels[:, 0].tolist() == [0, 1, 1]
    assert len(t.boxes) == 3 and t.boxes["image_id"].tolist() == ["bbb", "bbb", "ccc"]
    c = t.boxes.iloc[2]
    assert (c["x"], c["y"], c["w"], c["h"]) == pytest.approx((0.5, 0.0, 0.1, 1.0))
    assert t.frame["path"][1] == str(tmp_path / "stage_2_train_images" / "bbb.dcm")
    assert t.frame["rsna_class"].tolist() == ["Normal", "Lung Opacity", "Lung Opacity"]
    assert any("2 of 3 DICOMs not found" in n for n in t.notes)


def test_zip_table_given_as_root(tmp_path):
    z = tmp_path / "kaggle_stage_2_train_labels.csv.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("stage_2_train_labels.csv", LABELS)
    t = read_table("rsna", z)
    assert len(t) == 3 and len(t.boxes) == 3
    assert len(read_table("rsna", tmp_path)) == 3  # and found in its folder by name


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        read_table("rsna", tmp_path)
    assert "stage_2_train_labels.csv" in str(e.value) and str(tmp_path) in str(e.value)
    (tmp_path / "stage_2_train_labels.csv").write_text(
        "patientId,x,y,width,height,Target\na,,,,,0\na,1,1,1,1,1\n"
    )
    with pytest.raises(ValueError, match="Target 0 and 1"):
        read_table("rsna", tmp_path)
    (tmp_path / "stage_2_train_labels.csv").write_text("patientId,Target\na,0\n")
    with pytest.raises(ValueError, match="columns"):
        read_table("rsna", tmp_path)

"""The COVID-19 image data collection reader: frontal X-ray filter, label modes, lung masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chestxai.data.readers import read_table

META = (
    "patientid,offset,sex,age,finding,view,modality,folder,filename,license\n"
    "1,0,M,65,COVID-19,PA,X-ray,images,a.jpeg,cc\n"
    '1,3,M,65,"COVID-19, ARDS",AP Supine,X-ray,images,b.jpeg,cc\n'
    "2,,F,50,SARS,AP semi erect,X-ray,images,c.png,cc\n"
    "2,,F,50,SARS,L,X-ray,images,d.png,cc\n"
    "3,,F,40,COVID-19,Axial,CT,images,e.png,cc\n"
    "4,,M,30,Pneumonia/Viral/COVID-19,PA,X-ray,images,f.png,cc\n"
    "5,,M,30,Pneumonia/Bacterial/Streptococcus,AP,X-ray,images,g.png,cc\n"
    "6,,M,30,No Finding,PA,X-ray,images,h.png,cc\n"
    "7,,M,30,todo,PA,X-ray,images,i.png,cc\n"
)


@pytest.fixture
def collection(tmp_path) -> Path:
    (tmp_path / "metadata.csv").write_text(META)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpeg").write_bytes(b"jpg")
    (tmp_path / "lungVAE-masks").mkdir()
    (tmp_path / "lungVAE-masks" / "a_mask.png").write_bytes(b"png")
    return tmp_path


def test_frontal_xrays_as_multiclass_findings(collection):
    t = read_table("covid-collection", collection)
    assert t.frame["image_id"].tolist() == ["a.jpeg", "b.jpeg", "c.png", "f.png", "g.png", "h.png", "i.png"]
    assert t.task == "multiclass"
    assert t.label_names == sorted(
        [
            "COVID-19",
            "COVID-19, ARDS",
            "SARS",
            "Pneumonia/Viral/COVID-19",
            "Pneumonia/Bacterial/Streptococcus",
            "No Finding",
        ]
    )
    assert np.isnan(t.labels[-1]).all()  # todo = unknown
    assert t.frame["patient_id"].tolist()[:3] == ["1", "1", "2"]
    assert t.frame["path"][0] == str(collection / "images" / "a.jpeg")
    assert any("L" in n and "non-frontal" in n for n in t.notes) and any("non-X-ray" in n for n in t.notes)
    assert len(t.masks) == 1 and t.masks.iloc[0]["image_id"] == "a.jpeg" and t.masks.iloc[0]["kind"] == "png"


def test_leaf_and_multilabel_modes(collection):
    leaf = read_table("covid-collection", collection, label_mode="leaf")
    assert leaf.label_names == ["COVID-19", "No Finding", "SARS", "Streptococcus"]
    ml = read_table("covid-collection", collection, label_mode="multilabel")
    assert ml.task == "multilabel"
    assert ml.label_names == ["ARDS", "Bacterial", "COVID-19", "Pneumonia", "SARS", "Streptococcus", "Viral"]
    row = dict(zip(ml.frame["image_id"], ml.labels, strict=True))
    assert row["b.jpeg"].tolist() == [1, 0, 1, 0, 0, 0, 0]
    assert row["f.png"].tolist() == [0, 0, 1, 1, 0, 0, 1]
    assert row["h.png"].sum() == 0  # No Finding = all negative


def test_binary_positive(collection):
    t = read_table("covid-collection", collection, positive="COVID-19")
    assert t.task == "binary"
    assert t.labels[:6, 0].tolist() == [1, 1, 0, 1, 0, 0] and np.isnan(t.labels[6, 0])
    with pytest.raises(ValueError, match="not part of any finding"):
        read_table("covid-collection", collection, positive="Flu")


def test_missing_metadata(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        read_table("covid-collection", tmp_path)
    assert "metadata.csv" in str(e.value) and str(tmp_path) in str(e.value)

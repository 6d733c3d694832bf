"""Readers on the real tables and folders of ``../shared/data``, checked against published figures.

Every expected number says where it comes from. "measured" marks a figure counted from the file
itself for which no publication was found: it pins the reader against regressions, not against
the source. Skipped with a reason when the shared data folder is absent.

Out of scope for now (noted, not read): Google's 2019 NIH expert labels
(``google2019_nih-chest-xray-labels.csv.gz``), VinDr-CXR boxes (``vinbigdata-train.csv.gz``),
the NLM-CXR DICOM metadata and the V7 lung masks zip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chestxai.data.readers import read_table
from chestxai.data.summary import summarize
from chestxai.labels import NIH_BOXED

pytestmark = pytest.mark.realdata


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared data folder")
    return path


# --- NIH ChestX-ray14 -------------------------------------------------------------------------
# Images, patients and image counts per finding as published with the ChestX-ray14 release
# (Wang et al., CVPR 2017, updated 14-label set; figures as given in the project brief).
NIH_POSITIVES = {
    "Infiltration": 19894, "Effusion": 13317, "Atelectasis": 11559, "Nodule": 6331, "Mass": 5782,
    "Pneumothorax": 5302, "Consolidation": 4667, "Pleural_Thickening": 3385, "Cardiomegaly": 2776,
    "Emphysema": 2516, "Edema": 2303, "Fibrosis": 1686, "Pneumonia": 1431, "Hernia": 227,
}  # fmt: skip
NIH_NO_FINDING = 60361
# BBox_List_2017.csv: 984 boxes on 880 images over 8 findings (Wang et al. 2017, ChestX-ray8 boxes)
NIH_BOXES, NIH_BOX_IMAGES = 984, 880


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Data_Entry_2017.csv.zip", "Data_Entry_2017_v2020.csv.gz"])
def test_nih_full_table(shared_data, name):
    s = summarize(read_table("nih", _need(shared_data / "tables" / name)))
    assert s["images"] == 112120 and s["patients"] == 30805
    assert {k: v["positive"] for k, v in s["labels"].items()} == NIH_POSITIVES
    assert s["rows_all_negative"] == NIH_NO_FINDING
    assert all(v["unknown"] == 0 for v in s["labels"].values())
    # the v2020 table differs from the 2017 one only in ages and follow-up numbers (measured), so
    # both give the published label counts; the box list beside them is found and joined:
    assert s["boxes"]["total"] == NIH_BOXES and s["boxes"]["images"] == NIH_BOX_IMAGES
    assert len(s["boxes"]["per_label"]) == 8 and "Infiltration" in s["boxes"]["per_label"]
    assert s["files"]["exist"] == 0  # label tables only


def test_nih_box_list_gz_header_variant(shared_data):
    from chestxai.data.readers.nih import read_boxes

    boxes = read_boxes(_need(shared_data / "tables" / "BBox_List_2017.csv.gz"))
    assert len(boxes) == NIH_BOXES and boxes["image_id"].nunique() == NIH_BOX_IMAGES
    assert sorted(boxes["label"].unique()) == NIH_BOXED
    assert boxes[["x", "y", "w", "h"]].to_numpy().min() >= 0
    assert (boxes["x"] + boxes["w"]).max() <= 1.0 and (boxes["y"] + boxes["h"]).max() <= 1.0


def test_nih_bbox_folder(shared_data):
    root = _need(shared_data / "nih-bbox")
    s = summarize(read_table("nih", root))
    # shared/data/README.md: 596 box images, 684 boxes, 8 findings, every box image abnormal
    assert s["images"] == 596 and s["files"]["exist"] == 596
    assert s["boxes"]["total"] == 684 and s["boxes"]["images"] == 596 and len(s["boxes"]["per_label"]) == 8
    assert s["rows_all_negative"] == 0
    extra = summarize(read_table("nih", root / "extra"))
    # README: 20 extra images, 3 of them "No Finding"
    assert extra["images"] == 20 and extra["files"]["exist"] == 20
    assert extra["rows_all_negative"] == 3


# --- CheXpert -----------------------------------------------------------------------------------
# Irvin et al., AAAI 2019, Table 1 (training set): positive and uncertain counts per observation.
CHEXPERT_TABLE1 = {  # name: (positive, uncertain)
    "No Finding": (22381, 0), "Cardiomegaly": (27000, 8087), "Edema": (52246, 12984),
    "Atelectasis": (33376, 33739), "Pneumothorax": (19448, 3145), "Pleural Effusion": (86187, 11628),
    "Support Devices": (116001, 1079),
}  # fmt: skip


@pytest.mark.slow
def test_chexpert_train_table_and_policies(shared_data):
    path = _need(shared_data / "tables" / "chexpert_train.csv.gz")
    ignore = summarize(read_table("chexpert", path, views="all", uncertainty="ignore"))
    # CheXpert-v1.0 train.csv: 223,414 images of 64,540 patients (dataset release; Stanford ML group)
    assert ignore["images"] == 223414 and ignore["patients"] == 64540
    assert ignore["splits"] == {"train": 223414}
    ones = read_table("chexpert", path, views="all", uncertainty="ones").counts()
    zeros = read_table("chexpert", path, views="all", uncertainty="zeros").counts()
    for name, (pos, unc) in CHEXPERT_TABLE1.items():
        assert ignore["labels"][name]["positive"] == pos and ignore["labels"][name]["unknown"] == unc, name
        assert ones[name]["positive"] == pos + unc and ones[name]["unknown"] == 0, name
        assert zeros[name]["positive"] == pos and zeros[name]["negative"] == 223414 - pos, name
    frontal = summarize(read_table("chexpert", path))
    assert frontal["images"] == 191027  # measured: Frontal/Lateral == Frontal (lateral 32,387)
    assert "LATERAL" not in frontal["views"]


# --- RSNA pneumonia -----------------------------------------------------------------------------
def test_rsna_stage2_labels(shared_data):
    t = read_table("rsna", _need(shared_data / "tables" / "kaggle_stage_2_train_labels.csv.zip"))
    s = summarize(t)
    # Kaggle RSNA Pneumonia Detection Challenge, stage_2_train_labels.csv: 30,227 rows,
    # 26,684 images (one per patient), 6,012 positive, 9,555 boxes
    assert any("30227 rows" in n for n in s["notes"])
    assert s["images"] == 26684 and s["patients"] == 26684
    assert s["labels"]["Pneumonia"]["positive"] == 6012
    assert s["boxes"]["total"] == 9555 and s["boxes"]["images"] == 6012


# --- SIIM-ACR pneumothorax ----------------------------------------------------------------------
def test_siim_rle_table(shared_data):
    t = read_table("siim", _need(shared_data / "tables" / "siim-pneumothorax-train-rle.csv.gz"))
    s = summarize(t)
    # Measured: 12,954 rows, 12,047 images, 2,669 with pneumothorax, 3,576 mask rows. This is the
    # size of the *stage-2* training table (stage-1 train + stage-1 test, labels released for
    # stage 2): 12,047 images is the count published with the Kaggle "Pneumothorax chest X-ray
    # images and masks" set derived from it; the stage-1 train-rle.csv had ~10,675 images /
    # ~2,379 positive. Same columns (with the leading-space ' EncodedPixels') and the same
    # relative RLE, which masks.py decodes (its real-data test checks the orientation).
    assert any("12954 rows" in n for n in s["notes"])
    assert s["images"] == 12047 and s["labels"]["Pneumothorax"]["positive"] == 2669
    assert s["masks"]["total"] == 3576 and s["masks"]["images"] == 2669
    assert s["masks"]["kinds"] == {"rle": 3576}


def test_siim_real_dicom_header(shared_data, tmp_path):
    dcm = _need(shared_data / "dicom" / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    table = pd.read_csv(_need(shared_data / "tables" / "siim-pneumothorax-train-rle.csv.gz"))
    table[table["ImageId"] == dcm.stem].to_csv(tmp_path / "train-rle.csv", index=False)
    (tmp_path / "dicom-images-train" / "a" / "b").mkdir(parents=True)
    shutil.copy(dcm, tmp_path / "dicom-images-train" / "a" / "b" / dcm.name)
    t = read_table("siim", tmp_path)
    assert len(t) == 1 and t.labels[0, 0] == 0  # shared/data/README.md: its SIIM label is negative (-1)
    assert t.frame["path"][0].endswith(dcm.name) and Path(t.frame["path"][0]).exists()
    # patient id and view come from the DICOM header, not the file name
    assert t.frame["patient_id"][0] not in ("", dcm.stem)
    assert t.frame["view"][0] == "PA"


# --- COVID-19 image data collection -------------------------------------------------------------
def test_covid_collection(shared_data):
    root = _need(shared_data / "covid-collection")
    s = summarize(read_table("covid-collection", root))
    # shared/data/README.md: 227 frontal images (COVID-19 172, SARS 15, Pneumocystis 10,
    # Streptococcus 10), 162 lung masks
    assert s["images"] == 227 and s["files"]["exist"] == 227
    pos = {k: v["positive"] for k, v in s["labels"].items()}
    assert (pos["COVID-19"], pos["SARS"], pos["Pneumocystis"], pos["Streptococcus"]) == (172, 15, 10, 10)
    assert s["masks"]["total"] == 162 and s["masks"]["kinds"] == {"png": 162}
    assert s["patients"] == 138  # measured
    binary = summarize(read_table("covid-collection", root, positive="COVID-19"))
    assert binary["labels"]["COVID-19"]["positive"] == 172 + 11  # plus the 11 "COVID-19, ARDS" rows


# --- loose folders and MedMNIST -----------------------------------------------------------------
@pytest.mark.parametrize(("folder", "n"), [("samples", 7), ("dicom", 2)])
def test_loose_folders_read(shared_data, folder, n):
    s = summarize(read_table("folder", _need(shared_data / folder)))
    assert s["images"] == n and s["files"]["exist"] == n  # README: 7 samples, 2 DICOMs


def test_tbx11k_health_tb_pair_is_binary(shared_data):
    """samples/tbx11k/imgs holds a ``health`` and a ``tb`` folder: a normal/abnormal pair (issue 9 #11)."""
    t = read_table("folder", _need(shared_data / "samples"))
    assert t.task == "binary" and t.label_names == ["tb"]
    # measured from the folder: tb/ 2 images, health/ 1, 4 loose samples without a class
    assert t.counts()["tb"] == {"positive": 2, "negative": 1, "unknown": 4}
    assert read_table("folder", shared_data / "samples", multiclass=True).label_names == ["health", "tb"]


def test_csv_reader_on_the_covid_metadata(shared_data, tmp_path):
    """The real metadata.csv read as a plain manifest; ``nan`` cells stay unknown (issue 9 #8)."""
    meta = _need(shared_data / "covid-collection" / "metadata.csv")
    opts = dict(path_col="filename", label_col="finding", patient_col="patientid", view_col="view")
    t = read_table("csv", meta, image_root="images", **opts)
    assert len(t) == 227 and all(Path(p).is_file() for p in t.frame["path"])  # README: 227 images
    assert t.counts()["COVID-19"]["positive"] == 172  # README: finding COVID-19 172
    df = pd.read_csv(meta, dtype=str, keep_default_na=False)
    df.loc[:4, "finding"] = ["nan", "NaN", "inf", "", "nan"]  # what a spreadsheet round trip can leave
    df.to_csv(tmp_path / "metadata.csv", index=False)
    u = read_table("csv", tmp_path / "metadata.csv", image_root=str(meta.parent / "images"), **opts)
    assert u.label_names == [n for n in t.label_names if n in set(df["finding"])]  # no "nan"/"inf" class
    assert np.isnan(u.labels[:5]).all() and not np.isnan(u.labels[5:]).any()


def test_pneumoniamnist_summary(shared_data):
    path = _need(shared_data / "pneumoniamnist" / "pneumoniamnist.npz")
    s = summarize(read_table("medmnist", path, download_missing=False))
    # MedMNIST v2 official splits (Yang et al. 2023): train 4708, val 524, test 624
    assert s["splits"] == {"test": 624, "train": 4708, "val": 524}
    assert s["labels"]["Pneumonia"]["positive"] == 3494 + 389 + 390
    assert s["files"]["in_memory"] and s["files"]["exist"] == 5856

"""The SIIM-ACR reader: several RLE rows per image, -1 rows, nested DICOMs (synthetic headers)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from chestxai.data.masks import load_mask, rle_encode
from chestxai.data.readers import read_table


def _rle(r0: int, r1: int, c0: int, c1: int) -> str:
    m = np.zeros((1024, 1024), np.uint8)
    m[r0:r1, c0:c1] = 1
    return rle_encode(m)


A, B = _rle(100, 200, 100, 150), _rle(300, 350, 700, 800)
TABLE = f"ImageId, EncodedPixels\nimg.1,{A}\nimg.2, -1\nimg.1,{B}\nimg.3,-1\n"  # the release's leading space


def _dicom(path: Path, patient: str, view: str = "PA") -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.PatientID = patient
    ds.ViewPosition = view
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_rows_per_image_labels_and_masks(tmp_path):
    (tmp_path / "train-rle.csv").write_text(TABLE)
    t = read_table("siim", tmp_path)
    assert t.task == "binary" and t.label_names == ["Pneumothorax"]
    assert t.frame["image_id"].tolist() == ["img.1", "img.2", "img.3"]
    assert t.labels[:, 0].tolist() == [1, 0, 0]
    assert len(t.masks) == 2 and set(t.masks["image_id"]) == {"img.1"}
    assert set(t.masks["kind"]) == {"rle"} and set(t.masks["height"]) == {1024}
    union = load_mask(t.masks[t.masks["image_id"] == "img.1"])
    assert union.sum() == 100 * 50 + 50 * 100
    assert union[150, 120] == 1 and union[320, 750] == 1
    assert t.frame["patient_id"].tolist() == ["img.1", "img.2", "img.3"]  # no DICOMs: the ImageId
    assert t.frame["path"][0] == str(tmp_path / "img.1.dcm")


def test_gz_table_as_root_and_dicom_headers(tmp_path):
    p = tmp_path / "siim-pneumothorax-train-rle.csv.gz"
    p.write_bytes(gzip.compress(TABLE.encode()))
    _dicom(tmp_path / "dicom-images-train" / "1.2" / "1.3" / "img.1.dcm", "patient-a", "AP")
    _dicom(tmp_path / "dicom-images-train" / "1.4" / "1.5" / "img.2.dcm", "patient-b")
    _dicom(tmp_path / "dicom-images-test" / "9" / "9" / "img.9.dcm", "patient-z")
    t = read_table("siim", p)
    assert t.frame["path"][0] == str(tmp_path / "dicom-images-train" / "1.2" / "1.3" / "img.1.dcm")
    assert t.frame["patient_id"].tolist() == ["patient-a", "patient-b", "img.3"]
    assert t.frame["view"].tolist() == ["AP", "PA", ""]
    assert any("1 DICOMs" in n and "not listed" in n for n in t.notes)
    no_headers = read_table("siim", p, read_headers=False)
    assert no_headers.frame["patient_id"][0] == "img.1"


def test_discovers_the_shared_file_name_and_reports_missing(tmp_path):
    (tmp_path / "siim-pneumothorax-train-rle.csv").write_text(TABLE)
    assert len(read_table("siim", tmp_path)) == 3
    with pytest.raises(FileNotFoundError) as e:
        read_table("siim", tmp_path / "nothing-here")
    assert "does not exist" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        read_table("siim", tmp_path / "empty")
    assert "train-rle.csv" in str(e.value) and str(tmp_path / "empty") in str(e.value)

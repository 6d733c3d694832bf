"""Demographic columns of the data contract: the normalisation rules, each reader's columns, the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chestxai.data.demographics import (
    group_labels,
    normalise_age,
    normalise_frame,
    normalise_sex,
    normalise_view,
    parse_age,
)
from chestxai.data.readers import read_table


def test_sex_rules_and_unknown_stays_missing():
    got = normalise_sex(["F", "m", " Female ", "MALE", "O", "", None, np.nan, "Unknown", "x"])
    assert got == ["F", "M", "F", "M", None, None, None, None, None, None]


def test_age_numbers_dicom_strings_and_implausible_values():
    assert (
        parse_age("045Y") == 45.0
        and parse_age("006M") == 0.5
        and parse_age("365D") == pytest.approx(0.9993, abs=1e-3)
    )
    ages = normalise_age([58, "81", "045Y", "", None, np.nan, 414, -3, "old", 120])
    np.testing.assert_array_equal(ages[[0, 1, 2, 9]], [58.0, 81.0, 45.0, 120.0])
    assert np.isnan(ages[3:9]).all()  # blank, None, NaN, NIH 2017's 414, negative, text


def test_view_rules():
    got = normalise_view(["PA", "ap", "AP Supine", "AP semi erect", "L", "Lateral", "LL", "", None, "nan"])
    assert got == ["PA", "AP", "AP", "AP", "LATERAL", "LATERAL", "LL", "", "", ""]


def test_frame_gets_site_from_source_unless_recorded_and_is_idempotent():
    f = pd.DataFrame({"view": ["PA", ""], "site": ["Toronto", ""], "sex": ["f", "?"], "age": ["30", ""]})
    once = normalise_frame(f, "covid-collection")
    assert once["site"].tolist() == ["Toronto", "covid-collection"]
    assert once["sex"].tolist() == ["F", None]
    pd.testing.assert_frame_equal(normalise_frame(once, "covid-collection"), once)
    assert normalise_frame(pd.DataFrame({"view": [""]}), "nih")["site"].tolist() == ["nih"]


def test_missing_values_never_become_a_group():
    labels = group_labels(["F", None, np.nan, "", "nan", "M", " F "])
    assert labels.tolist() == ["F", None, None, None, None, "M", "F"]


def test_nih_reader_carries_official_demographics(tmp_path):
    (tmp_path / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"
        "a.png,Mass,0,1,58,M,PA\nb.png,No Finding,0,2,414,F,AP\n"
    )
    f = read_table("nih", tmp_path).frame
    assert f["sex"].tolist() == ["M", "F"] and f["view"].tolist() == ["PA", "AP"]
    assert f["age"][0] == 58.0 and np.isnan(f["age"][1]) and f["site"].tolist() == ["nih", "nih"]


def test_csv_manifest_demographic_columns_by_option(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,gender,years,hospital\na.png,1,F,40,H1\nb.png,0,,x,\n")
    t = read_table("csv", tmp_path / "m.csv", sex_col="gender", age_col="years", site_col="hospital")
    assert t.frame["sex"].tolist() == ["F", None] and t.frame["site"].tolist() == ["H1", "csv"]
    assert t.frame["age"][0] == 40.0 and np.isnan(t.frame["age"][1])
    with pytest.raises(ValueError, match="nope"):
        read_table("csv", tmp_path / "m.csv", sex_col="nope")


def _dicom(path: Path, **attrs) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for k, v in attrs.items():
        setattr(ds, k, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_rsna_and_siim_read_sex_age_view_from_dicom_headers(tmp_path):
    rsna = tmp_path / "rsna"
    rsna.mkdir()
    (rsna / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\np1,,,,,0\np2,,,,,0\n")
    _dicom(rsna / "stage_2_train_images" / "p1.dcm", PatientSex="F", PatientAge="045Y", ViewPosition="PA")
    f = read_table("rsna", rsna).frame
    assert f["sex"].tolist() == ["F", None] and f["view"].tolist() == ["PA", ""]
    assert f["age"][0] == 45.0 and np.isnan(f["age"][1])
    siim = tmp_path / "siim"
    siim.mkdir()
    (siim / "train-rle.csv").write_text("ImageId, EncodedPixels\nimg.1, -1\n")
    _dicom(siim / "d" / "img.1.dcm", PatientID="pa", PatientSex="M", PatientAge="070Y", ViewPosition="AP")
    f = read_table("siim", siim).frame
    assert (f["sex"][0], f["age"][0], f["view"][0], f["site"][0]) == ("M", 70.0, "AP", "siim")


def test_prepared_cache_keeps_the_columns(tmp_path):
    from PIL import Image

    from chestxai.data.cache import PreparedCache
    from chestxai.data.prepare import prepare

    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "images" / name)
    (tmp_path / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"
        "a.png,Mass,0,1,58,M,PA\nb.png,No Finding,0,2,,F,AP\n"
    )
    out = prepare("nih", tmp_path, size=8, out=tmp_path / "cache", workers=0, progress=False)
    frame = PreparedCache(out).frame
    assert frame["sex"].tolist() == ["M", "F"] and frame["view"].tolist() == ["PA", "AP"]
    assert frame["site"].tolist() == ["nih", "nih"] and group_labels(frame["age"]).tolist() == ["58.0", None]


@pytest.mark.realdata
def test_real_tables_carry_their_official_demographics(shared_data):
    nih = shared_data / "nih-bbox" / "Data_Entry_2017.csv"
    covid = shared_data / "covid-collection" / "metadata.csv"
    if not nih.is_file() or not covid.is_file():
        pytest.skip("nih-bbox or covid-collection tables are absent")
    official = pd.read_csv(nih)
    f = read_table("nih", nih).frame
    assert f["sex"].value_counts().to_dict() == official["Patient Gender"].value_counts().to_dict()
    assert f["view"].value_counts().to_dict() == official["View Position"].value_counts().to_dict()
    assert (f["age"].to_numpy() == official["Patient Age"].to_numpy()).all()  # all plausible in this subset
    c = read_table("covid-collection", covid.parent).frame
    assert set(c["sex"].dropna()) <= {"F", "M"} and c["sex"].isna().any()  # unrecorded sex stays missing
    assert set(c["view"]) <= {"PA", "AP"}  # the reader keeps frontal views; AP Supine... are AP
    located = c["site"] != "covid-collection"
    assert located.any() and (~located).any()  # the recorded location, else the reader's name

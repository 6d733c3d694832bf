"""The CheXpert reader: uncertainty policies, blanks, views, splits (tiny synthetic csv)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from chestxai.data.readers import read_table
from chestxai.data.readers.chexpert import LABELS

HEADER = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(LABELS)


def _row(path: str, fl: str, appa: str, values: dict[str, str]) -> str:
    return ",".join([path, "Female", "68", fl, appa] + [values.get(name, "") for name in LABELS])


TRAIN = (
    "\n".join(
        [
            HEADER,
            # Cardiomegaly uncertain, Edema positive, Pneumonia explicit 0, the rest blank
            _row(
                "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg",
                "Frontal",
                "AP",
                {"Cardiomegaly": "-1.0", "Edema": "1.0", "Pneumonia": "0.0"},
            ),
            _row(
                "CheXpert-v1.0-small/train/patient00001/study1/view2_lateral.jpg",
                "Lateral",
                "",
                {"Cardiomegaly": "1.0"},
            ),
            _row(
                "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg",
                "Frontal",
                "PA",
                {"No Finding": "1.0"},
            ),
        ]
    )
    + "\n"
)
VALID = (
    HEADER
    + "\n"
    + _row(
        "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg",
        "Frontal",
        "AP",
        {"Edema": "1.0", "Cardiomegaly": "0.0"},
    )
    + "\n"
)


@pytest.fixture
def chexpert(tmp_path) -> Path:
    root = tmp_path / "CheXpert-v1.0-small"
    root.mkdir()
    (root / "train.csv").write_text(TRAIN)
    (root / "valid.csv").write_text(VALID)
    return root


def _lab(t, image_id: str, name: str) -> float:
    row = t.frame.index[t.frame["image_id"] == image_id][0]
    return float(t.labels[row, LABELS.index(name)])


FIRST = "train/patient00001/study1/view1_frontal.jpg"


@pytest.mark.parametrize(("policy", "expected"), [("ones", 1.0), ("zeros", 0.0), ("ignore", np.nan)])
def test_uncertainty_policies(chexpert, policy, expected):
    t = read_table("chexpert", chexpert, uncertainty=policy)
    np.testing.assert_equal(_lab(t, FIRST, "Cardiomegaly"), expected)
    assert _lab(t, FIRST, "Edema") == 1.0
    assert _lab(t, FIRST, "Pneumonia") == 0.0  # explicit negative
    assert _lab(t, FIRST, "Atelectasis") == 0.0  # blank -> negative
    assert any("blank -> 0" in n for n in t.notes) and any(policy in n for n in t.notes)


def test_default_is_frontal_ignore_with_splits_and_patients(chexpert):
    t = read_table("chexpert", chexpert)
    assert t.task == "multilabel" and t.label_names == LABELS and len(LABELS) == 14
    assert len(t) == 3  # the lateral is dropped
    assert np.isnan(_lab(t, FIRST, "Cardiomegaly"))
    assert t.frame["split"].tolist() == ["train", "train", "val"]
    assert t.frame["patient_id"].tolist() == ["patient00001", "patient00002", "patient64541"]
    assert t.frame["view"].tolist() == ["AP", "PA", "AP"]
    assert t.frame["path"][0] == str(chexpert / FIRST)  # resolved under the folder holding the csv


def test_views_option(chexpert):
    assert len(read_table("chexpert", chexpert, views="all")) == 4
    lat = read_table("chexpert", chexpert, views="lateral")
    assert len(lat) == 1 and lat.frame["view"][0] == "LATERAL"
    with pytest.raises(ValueError, match="views"):
        read_table("chexpert", chexpert, views="oblique")
    with pytest.raises(ValueError, match="uncertainty"):
        read_table("chexpert", chexpert, uncertainty="maybe")


def test_root_may_be_a_gz_csv(tmp_path):
    p = tmp_path / "chexpert_train.csv.gz"
    p.write_bytes(gzip.compress(TRAIN.encode()))
    t = read_table("chexpert", p, uncertainty="ones")
    assert len(t) == 2 and set(t.frame["split"]) == {"train"}
    assert _lab(t, FIRST, "Cardiomegaly") == 1.0


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        read_table("chexpert", tmp_path)
    bad = tmp_path / "train.csv"
    bad.write_text(
        HEADER + "\n" + _row("x/train/patient1/study1/view1_frontal.jpg", "Frontal", "AP", {"Edema": "2"})
    )
    with pytest.raises(ValueError, match="'Edema'"):
        read_table("chexpert", tmp_path)

"""`explain --boxes` accepts the official box files as distributed (issue 9 #13): NIH BBox_List_2017.csv
(both header variants) and RSNA stage_2_train_labels.csv, scaled from their 1024 px space to each
image's own size, plus the project's image_id,label,x,y,w,h (fractions or pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chestxai.explain.items import ImageSet, build_items, read_boxes_csv
from chestxai.paths import shared_data_root

DATA = shared_data_root()
NIH_BOXES = DATA / "nih-bbox" / "BBox_List_2017.csv"
NIH_FULL = DATA / "tables" / "BBox_List_2017_full.csv"
RSNA_LABELS = DATA / "tables" / "kaggle_stage_2_train_labels.csv.zip"
LABELS = ["Atelectasis", "Infiltration", "Mass", "Pneumonia"]


def _items(boxes: pd.DataFrame, ids: list[str], size: int):
    images = ImageSet(ids, [np.zeros((size, size), np.uint8) for _ in ids], "files")
    items, skipped = build_items(images, LABELS, boxes=boxes)
    return {(it.image_id, it.finding): it.gt_boxes for it in items}, skipped


def test_official_nih_release_header_is_read_and_scaled(tmp_path):
    """The release's header ``Bbox [x,y,w,h],,,`` splits into four columns, three unnamed; the
    coordinates are pixels of the 1024 px images, here explained at 512 px."""
    path = tmp_path / "BBox_List_2017.csv"
    path.write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000001_000.png,Atelectasis,100,200,300,400\n"
        "00000002_000.png,Infiltrate,512,0,256,128\n"
    )
    boxes = read_boxes_csv(path)
    assert list(boxes["label"]) == ["Atelectasis", "Infiltration"]  # the reader's canonical names
    found, skipped = _items(boxes, ["00000001_000.png", "00000002_000.png"], 512)
    assert not skipped
    assert found[("00000001_000.png", "Atelectasis")] == [(50.0, 100.0, 150.0, 200.0)]
    assert found[("00000002_000.png", "Infiltration")] == [(256.0, 0.0, 128.0, 64.0)]


def test_official_rsna_table_is_read_and_matched_by_patient_id(tmp_path):
    path = tmp_path / "stage_2_train_labels.csv"
    path.write_text(
        "patientId,x,y,width,height,Target\nabc,,,,,0\ndef,264,152,213,379,1\ndef,562,152,256,453,1\n"
    )
    boxes = read_boxes_csv(path)
    assert len(boxes) == 2 and set(boxes["label"]) == {"Pneumonia"}
    found, _ = _items(boxes, ["abc.dcm", "def.dcm"], 1024)  # files are <patientId>.dcm
    assert found[("def.dcm", "Pneumonia")] == [(264.0, 152.0, 213.0, 379.0), (562.0, 152.0, 256.0, 453.0)]
    assert ("abc.dcm", "Pneumonia") not in found


def test_own_convention_fractions_or_pixels(tmp_path):
    frac = tmp_path / "frac.csv"
    pd.DataFrame([{"image_id": "a.png", "label": "Mass", "x": 0.25, "y": 0.5, "w": 0.5, "h": 0.25}]).to_csv(
        frac, index=False
    )
    pix = tmp_path / "pix.csv"
    pd.DataFrame([{"image_id": "a.png", "label": "Mass", "x": 10, "y": 20, "w": 30, "h": 40}]).to_csv(
        pix, index=False
    )
    assert _items(read_boxes_csv(frac), ["a.png"], 200)[0][("a.png", "Mass")] == [(50.0, 100.0, 100.0, 50.0)]
    assert _items(read_boxes_csv(pix), ["a.png"], 200)[0][("a.png", "Mass")] == [(10.0, 20.0, 30.0, 40.0)]


def test_unknown_layouts_and_bad_rows_name_the_fix(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,finding,left,top\na.png,Mass,1,2\n")
    with pytest.raises(ValueError, match="BBox_List_2017.csv.*stage_2_train_labels.csv"):
        read_boxes_csv(bad)
    broken = tmp_path / "broken.csv"
    broken.write_text("image_id,label,x,y,w,h\na.png,Mass,1,2,x,4\n")
    with pytest.raises(ValueError, match="row 2"):
        read_boxes_csv(broken)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_boxes_csv(tmp_path / "nope.csv")


@pytest.mark.skipif(not NIH_BOXES.is_file(), reason=f"real NIH boxes not found at {NIH_BOXES}")
def test_real_nih_box_files():
    """The shared 512 px NIH box images with the release's own box list (1024 px space)."""
    raw = pd.read_csv(NIH_BOXES)
    boxes = read_boxes_csv(NIH_BOXES)
    assert len(boxes) == len(raw) == 684
    assert boxes["fraction"].all() and boxes[["x", "y", "w", "h"]].to_numpy().max() <= 1.0
    first = raw.iloc[0]
    found, _ = _items(boxes, [first["Image Index"]], 512)
    (box,) = [b for (i, f), bs in found.items() for b in bs if f == first["Finding Label"]][:1]
    np.testing.assert_allclose(box, np.array([first["x"], first["y"], first["w"], first["h"]]) / 2.0)
    if NIH_FULL.is_file():  # the full release: the "Bbox [x,y,w,h],,," header variant
        assert len(read_boxes_csv(NIH_FULL)) == len(pd.read_csv(NIH_FULL)) == 984


@pytest.mark.skipif(not RSNA_LABELS.is_file(), reason=f"real RSNA table not found at {RSNA_LABELS}")
def test_real_rsna_label_table():
    raw = pd.read_csv(RSNA_LABELS)
    boxes = read_boxes_csv(RSNA_LABELS)
    assert len(boxes) == int((raw["Target"] == 1).sum()) and boxes["fraction"].all()
    row = raw[raw["Target"] == 1].iloc[0]
    got = boxes[boxes["image_id"] == row["patientId"]].iloc[0]
    assert got["x"] == pytest.approx(row["x"] / 1024) and got["h"] == pytest.approx(row["height"] / 1024)

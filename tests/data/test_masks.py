"""SIIM run-length decoding and mask loading on hand-built masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from chestxai.data.masks import load_mask, masks_for_image, rle_decode, rle_encode


def test_column_major_relative_encoding():
    # a 4 x 3 image (height 4, width 3); pixels counted down each column first:
    # flat 0..3 = column 0, 4..7 = column 1. "1 2 3 1": skip 1, two on (flat 1, 2), skip 3, one on (flat 6)
    m = rle_decode("1 2 3 1", height=4, width=3)
    expected = np.zeros((4, 3), np.uint8)
    expected[1, 0] = expected[2, 0] = 1  # rows 1-2 of column 0
    expected[2, 1] = 1  # flat 6 = column 1, row 2
    np.testing.assert_array_equal(m, expected)
    assert m.dtype == np.uint8


@pytest.mark.parametrize("empty", ["-1", " -1", "", "  "])
def test_no_mask_is_zeros(empty):
    m = rle_decode(empty, 8, 8)
    assert m.shape == (8, 8) and m.sum() == 0


def test_roundtrip_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random((16, 12)) > 0.7).astype(np.uint8)
        assert np.array_equal(rle_decode(rle_encode(m), 16, 12), m)
    assert rle_encode(np.zeros((4, 4))) == "-1"


def test_rle_past_the_end_names_the_size():
    with pytest.raises(ValueError, match="1024x1024"):
        rle_decode("10 20", height=4, width=4)
    with pytest.raises(ValueError, match="odd number"):
        rle_decode("1 2 3", 4, 4)
    with pytest.raises(ValueError, match="integers"):
        rle_decode("a b", 4, 4)


def test_load_mask_rle_row_and_union():
    a = np.zeros((6, 6), np.uint8)
    a[0:2, 0:2] = 1
    b = np.zeros((6, 6), np.uint8)
    b[4:6, 3:5] = 1
    rows = pd.DataFrame(
        {
            "image_id": ["x", "x"],
            "label": ["Pneumothorax"] * 2,
            "kind": ["rle"] * 2,
            "ref": [rle_encode(a), rle_encode(b)],
            "height": [6, 6],
            "width": [6, 6],
        }
    )
    assert np.array_equal(load_mask(rows.iloc[0]), a)
    assert np.array_equal(load_mask(rows), a | b)
    assert np.array_equal(masks_for_image(rows, "x"), a | b)
    assert masks_for_image(rows, "y") is None


def test_load_mask_png_relative_to_root(tmp_path):
    arr = np.zeros((5, 7), np.uint8)
    arr[1:3, 2:6] = 255
    (tmp_path / "m").mkdir()
    Image.fromarray(arr).save(tmp_path / "m" / "a_mask.png")
    row = {
        "image_id": "a",
        "label": "Lungs",
        "kind": "png",
        "ref": "m/a_mask.png",
        "height": np.nan,
        "width": np.nan,
    }
    m = load_mask(row, tmp_path)
    assert m.shape == (5, 7) and m.dtype == np.uint8
    assert np.array_equal(m, (arr > 0).astype(np.uint8))
    with pytest.raises(FileNotFoundError, match="root"):
        load_mask({**row, "ref": "m/missing.png"}, tmp_path)


def test_unknown_kind_and_shape_mismatch():
    with pytest.raises(ValueError, match="kind"):
        load_mask({"image_id": "a", "kind": "polygon", "ref": ""})
    rows = pd.DataFrame(
        {
            "image_id": ["x", "x"],
            "label": ["P", "P"],
            "kind": ["rle", "rle"],
            "ref": ["0 1", "0 1"],
            "height": [4, 5],
            "width": [4, 5],
        }
    )
    with pytest.raises(ValueError, match="shapes"):
        load_mask(rows)

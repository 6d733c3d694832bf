"""The SIIM RLE orientation, checked on the real table (see ``chestxai.data.masks`` docstring).

Summed over many real pneumothorax masks, the correct (column-major) decoding draws upright
lungs: the mask mass is centred high (apices) and midway across, with a dark vertical midline
(mediastinum). Transposed, the centre moves to the left edge at mid height; flipped upside down,
it moves to the lower half.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chestxai.data.masks import rle_decode

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_siim_masks_are_upright_lungs(shared_data):
    path = shared_data / "tables" / "siim-pneumothorax-train-rle.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    df = pd.read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    rles = df["EncodedPixels"].str.strip()
    rles = rles[rles != "-1"].iloc[:600]  # a subset keeps the test to a few seconds
    acc = np.zeros((1024, 1024), np.float64)
    for r in rles:
        m = rle_decode(r, 1024, 1024)
        assert m.any()
        acc += m
    rows, cols = acc.sum(axis=1), acc.sum(axis=0)
    pos = (np.arange(1024) + 0.5) / 1024
    cy, cx = (rows * pos).sum() / rows.sum(), (cols * pos).sum() / cols.sum()
    # measured on these 600 rows: cy 0.34, cx 0.44; transposed they swap, flipped cy becomes 0.66
    assert cy < 0.4, f"mask mass centred at height {cy:.2f}: apices should be at the top"
    assert 0.4 < cx < 0.6, f"mask mass centred at width {cx:.2f}: should sit between both lungs"
    # dark vertical midline between the lungs (0.27 here; 0.48 when transposed)
    midline = cols[480:544].mean() / ((cols[200:400].mean() + cols[624:824].mean()) / 2)
    assert midline < 0.4

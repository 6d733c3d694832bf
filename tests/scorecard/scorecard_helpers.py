"""Helpers for the scorecard tests (imported by name, like tests/explain/explain_helpers.py)."""

from __future__ import annotations

import pandas as pd

from chestxai.testing import SPLIT_CYCLE


def box_table(n: int, splits=("test", "val"), n_images: int = 6) -> pd.DataFrame:
    """A 10 x 8 px box of Pneumonia on the first ``n_images`` images of each split."""
    rows = []
    for split in splits:
        picked = [i for i in range(n) if SPLIT_CYCLE[i % len(SPLIT_CYCLE)] == split][:n_images]
        rows += [
            {"image_id": f"img{i:05d}", "label": "Pneumonia", "x": 4, "y": 6, "w": 10, "h": 8} for i in picked
        ]
    return pd.DataFrame(rows)

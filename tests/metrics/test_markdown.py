"""One Markdown table writer: header, rule, rows; missing values empty; floats as asked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from chestxai.metrics.markdown import markdown_table


def test_a_frame_becomes_a_github_table_with_empty_cells_for_missing_values() -> None:
    frame = pd.DataFrame({"run": ["a", "b"], "auc": [0.91234, np.nan], "n": [3, 4], "note": [None, "x"]})
    assert markdown_table(frame) == (
        "| run | auc | n | note |\n|---|---|---|---|\n| a | 0.91234 | 3 |  |\n| b |  | 4 | x |\n"
    )
    assert "| a | 0.912 | 3 |  |" in markdown_table(frame, float_format=".3f")


def test_an_empty_frame_keeps_its_header() -> None:
    assert markdown_table(pd.DataFrame(columns=["a", "b"])) == "| a | b |\n|---|---|\n"

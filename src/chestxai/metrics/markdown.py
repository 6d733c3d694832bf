"""GitHub-flavoured Markdown tables, written one way for every stage that writes one
(``compare``'s ``OUT.md``, ``explain``'s method comparison and layer comparison).

No extra dependency (``DataFrame.to_markdown`` needs tabulate); a missing value (None, NaN) is
an empty cell, so a table never shows ``nan``.
"""

from __future__ import annotations

import pandas as pd


def _cell(value, float_format: str | None) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if float_format is not None and isinstance(value, float):
        return format(value, float_format)
    return str(value)


def markdown_table(frame: pd.DataFrame, float_format: str | None = None) -> str:
    """``frame`` as a Markdown table (header, rule, one line per row), ending in a newline.

    ``float_format`` (e.g. ``".3f"``) formats float cells; without it they are ``str(value)``."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(_cell(v, float_format) for v in row) + " |"
        for row in frame.astype(object).itertuples(index=False, name=None)
    ]
    return "\n".join([head, rule, *body]) + "\n"

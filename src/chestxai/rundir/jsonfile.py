"""Strict JSON for run-directory files: NaN/inf become ``null`` (plain JSON has no NaN; browsers
and ``jq`` reject it), numpy scalars and arrays become Python numbers and lists. Writes are atomic."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.atomic import write_text


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); delete it and re-run the stage that wrote it"
        ) from None


def as_float(v: Any) -> float:
    """A metrics.json number back to float (``null`` -> NaN)."""
    return float("nan") if v is None else float(v)

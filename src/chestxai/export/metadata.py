"""Check the chestxai metadata an ``.onnx`` file carries before ``predict --onnx`` trusts it.

The metadata (``metadata_props["chestxai"]``, JSON, written by :mod:`chestxai.export.onnx`)
decides how images are resized, which column is which finding and where each decision falls.
A file edited by hand, produced by another tool or damaged in transit used to fail deep in the
pipeline with a traceback (``KeyError: 'task'``, ``TypeError`` on a threshold, a shape mismatch
in :func:`~chestxai.metrics.decisions.decide`), or worse, score with a threshold outside [0, 1].
:func:`check_metadata` checks every field the runtime reads, with types and ranges, and raises one
ValueError that names the file, the field and what was expected.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from chestxai.tasks import TASKS

#: the largest square side an image is resized to (a 16k x 16k float batch would exhaust memory)
MAX_SIDE = 8192


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, field: str, expected: str, got: Any) -> None:
        shown = repr(got)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(
            f"{self.path}: ONNX metadata field {field!r} must be {expected}, got {shown}; "
            "re-export the model with `chestxai export RUN`"
        )

    def number(
        self, field: str, value: Any, lo: float | None = None, hi: float | None = None, *, what: str
    ) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
        if not ok:
            self.fail(field, what, value)
        return float(value)

    def side(self, field: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIDE:
            self.fail(field, f"a positive integer (pixels, at most {MAX_SIDE})", value)
        return int(value)


def parse_metadata(path: Path, raw: str | None) -> dict[str, Any]:
    """The metadata JSON object; a ValueError naming ``path`` when it is missing or not an object."""
    if raw is None:
        raise ValueError(
            f"{path} carries no chestxai metadata (labels, preprocessing); export it with `chestxai export RUN`"
        )
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ValueError(
            f"{path}: ONNX metadata 'chestxai' is not valid JSON ({exc}); re-export the model"
        ) from None
    if not isinstance(meta, dict):
        _Checker(path).fail("chestxai", "a JSON object", meta)
    return meta


def check_metadata(
    path: Path, meta: dict[str, Any], output_width: int | None = None, input_side: int | None = None
) -> dict[str, Any]:
    """``meta`` with checked, normalised values; ValueError on the first bad field.

    ``output_width``: the graph's number of output columns when it is fixed (the labels must match
    it); ``input_side``: the graph's fixed input side (``resize_to`` must match it)."""
    c = _Checker(path)
    names = meta.get("label_names")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n.strip() for n in names)
        or len(set(names)) != len(names)
    ):
        c.fail("label_names", "a non-empty list of unique, non-empty strings", names)
    if output_width is not None and len(names) != output_width:
        c.fail("label_names", f"{output_width} name(s), one per output column of the model", names)
    task = meta.get("task")
    if task not in TASKS:
        c.fail("task", f"one of {', '.join(TASKS)}", task)
    if task == "binary" and len(names) != 1:
        c.fail("label_names", "exactly one name for a binary task", names)
    if task == "multiclass" and len(names) < 2:
        c.fail("label_names", "at least two names for a multiclass task", names)
    resize_to = c.side("resize_to", meta.get("resize_to"))
    if input_side is not None and resize_to != input_side:
        c.fail("resize_to", f"{input_side}, the side of the model's input", resize_to)
    pre = meta.get("preprocess")
    if not isinstance(pre, dict):
        c.fail("preprocess", "an object with size, mean and std", pre)
    c.side("preprocess.size", pre.get("size"))
    c.number("preprocess.mean", pre.get("mean"), what="a finite number")
    c.number("preprocess.std", pre.get("std"), what="a finite number above 0")
    if pre["std"] <= 0:
        c.fail("preprocess.std", "a finite number above 0", pre["std"])
    thresholds = meta.get("thresholds")
    if not isinstance(thresholds, dict) or set(thresholds) != set(names):
        c.fail("thresholds", f"an object with one threshold per label ({', '.join(names)})", thresholds)
    checked = {
        n: c.number(f"thresholds.{n}", thresholds[n], 0.0, 1.0, what="a number in [0, 1]") for n in names
    }
    temperature = meta.get("temperature")
    if temperature is not None:
        # 0 means "no scaling" to decide(), as null does
        temperature = c.number("temperature", temperature, 0.0, what="null or a finite number >= 0") or None
    model = meta.get("model", "?")
    if not isinstance(model, str):
        c.fail("model", "a string (the architecture's name)", model)
    return {
        **meta,
        "label_names": list(names),
        "task": task,
        "resize_to": resize_to,
        "thresholds": checked,
        "temperature": temperature,
    }


def fixed_dim(shape: Any, index: int) -> int | None:
    """``shape[index]`` when onnxruntime reports it as a fixed integer (dynamic axes are strings)."""
    try:
        value = shape[index]
    except (IndexError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

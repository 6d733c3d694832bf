"""The model card the viewer shows: what a served model is, how well it did, and what it is not for.

Everything comes from the run directory as it is, read only: the test metrics with their
bootstrap intervals from ``metrics.json`` (written by ``chestxai evaluate``; absent -> the card
says the run was not evaluated), the input size and labels from the checkpoint, the training data
from the checkpoint's config. Nothing is computed here, so the card shows the numbers the report
shows.
"""

from __future__ import annotations

import logging
from typing import Any

from chestxai.metrics.classification import SUMMARY_METRICS
from chestxai.rundir.jsonfile import read_json

log = logging.getLogger(__name__)

INTENDED_USE = (
    "Research and teaching: exploring what a chest X-ray classifier attends to. "
    "Not a medical device; not for clinical use, diagnosis or triage."
)
#: summary metrics shown (macro averages; accuracy from the overall block when there)
CARD_METRICS = SUMMARY_METRICS


def _value(entry: Any) -> dict | None:
    if not isinstance(entry, dict) or "value" not in entry:
        return None
    lo, hi = entry.get("ci") or (None, None)
    return {"value": entry.get("value"), "ci_low": lo, "ci_high": hi}


def model_card(served) -> dict[str, Any]:
    """The card of a :class:`~chestxai.serve.models.ServedModel` (read-only reads of its run)."""
    card: dict[str, Any] = {
        "name": served.name,
        "model": served.description,
        "task": served.task,
        "labels": list(served.label_names),
        "input_size": int(served.preprocess["size"]),
        "resize_to": int(served.resize_to),
        "checkpoint_epoch": served.epoch,
        "training_data": served.training_data,
        "intended_use": INTENDED_USE,
        "evaluated": False,
        "split": None,
        "n_images": None,
        "ci_level": None,
        "metrics": {},
        "per_class_roc_auc": {},
        "note": None,
    }
    path = served.run.metrics
    if not path.is_file():
        card["note"] = f"{path.name} is absent: run `chestxai evaluate {served.run.root}` for test metrics"
        return card
    try:
        data = read_json(path)
        m = data["metrics"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        log.warning("model card of %s: cannot read %s (%s)", served.name, path, exc)
        card["note"] = f"{path.name} could not be read ({exc})"
        return card
    overall = m.get("overall", {})
    for key in CARD_METRICS:
        v = _value(overall.get(key)) or _value(m.get("macro", {}).get(key))
        if v is not None:
            card["metrics"][key] = v
    for name, entry in (m.get("per_class") or {}).items():
        v = _value((entry or {}).get("roc_auc"))
        if v is not None:
            card["per_class_roc_auc"][name] = v
    boot = data.get("bootstrap") or {}
    card.update(
        evaluated=True,
        split=data.get("split", "test"),
        n_images=data.get("n_images"),
        ci_level=boot.get("level"),
    )
    return card

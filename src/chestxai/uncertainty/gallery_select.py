"""Which cases the report shows a radiologist, and their uncertainty heatmaps.

Two lists (pure selection over arrays, :func:`select_cases`): the **most uncertain** images (by
predictive entropy, the referral candidates) and the **confident errors** (wrong decisions with
the lowest entropy: what referral by uncertainty would *not* catch). Each case is explained for
one label: its most uncertain label, or for an error the wrong label decided most confidently.
:func:`write_gallery` draws one mean/std Grad-CAM strip per case (:mod:`.heatmaps`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from chestxai.explain.methods import UnsupportedMethodError
from chestxai.metrics.decisions import decide
from chestxai.models.preprocess import to_input
from chestxai.uncertainty.heatmaps import write_heatmap_figure
from chestxai.uncertainty.methods import get_method

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    position: int  # index in the evaluated split
    kind: str  # "most_uncertain" | "confident_error"
    label: int  # output explained


def select_cases(
    measures: dict,
    uncertainty: np.ndarray,
    loss: np.ndarray,
    targets: np.ndarray,
    task: str,
    thresholds,
    k: int = 4,
) -> list[Case]:
    """Up to ``k`` most uncertain images and ``k`` confident errors (no image twice)."""
    u = np.asarray(uncertainty, np.float64)
    mean = np.asarray(measures["mean"], np.float64)
    if k <= 0 or not len(u):
        return []
    uncertain = [int(i) for i in np.argsort(-u, kind="stable")[:k]]
    wrong = np.flatnonzero(np.nan_to_num(loss, nan=0.0) > 0)
    errors = [int(i) for i in wrong[np.argsort(u[wrong], kind="stable")] if int(i) not in uncertain][:k]
    dec = decide(mean, task, thresholds)
    t = np.full(mean.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, np.float64)
    cases = []
    for i in uncertain:
        label = int(mean[i].argmax()) if task == "multiclass" else int(np.argmax(measures["entropy"][i]))
        cases.append(Case(i, "most_uncertain", label))
    for i in errors:
        if task == "multiclass":
            label = int(mean[i].argmax())
        else:
            wrong_labels = (dec[i] != np.nan_to_num(targets[i])) & ~np.isnan(targets[i])
            label = int(np.argmax(np.abs(mean[i] - t) * wrong_labels))
        cases.append(Case(i, "confident_error", label))
    return cases


def write_gallery(
    sampler, images, rows: np.ndarray, ids: np.ndarray, names: list[str], measures: dict,
    targets: np.ndarray, cases: list[Case], out, passes: int, seed: int,
) -> list[dict]:  # fmt: skip
    """Heatmap PNGs under ``out.heatmaps`` and one JSON-ready entry per case."""
    if not cases:
        return []
    pos = np.array([c.position for c in cases])
    pixels = np.asarray(images[rows[pos]])
    first = sampler.model[0] if isinstance(sampler.model, list) else sampler.model
    device = next(first.parameters()).device
    x = to_input(pixels, sampler.preprocess).to(device)
    try:
        mean_maps, std_maps = get_method(sampler.method).cams(
            sampler, x, [c.label for c in cases], pos, passes, seed
        )
    except UnsupportedMethodError as exc:
        log.warning("no uncertainty heatmaps: %s", exc)
        mean_maps = std_maps = None
    entries = []
    for j, c in enumerate(cases):
        label = names[c.label]
        entry = {
            "kind": c.kind,
            "image_id": str(ids[c.position]),
            "label": label,
            "p_mean": float(measures["mean"][c.position, c.label]),
            "std": float(measures["std"][c.position, c.label]),
            "entropy": float(measures["entropy"][c.position, c.label]),
            "target": float(targets[c.position, c.label]),
        }
        if mean_maps is not None:
            path = out.heatmap(entry["image_id"], label)
            entry.update(write_heatmap_figure(pixels[j], mean_maps[j], std_maps[j], path))
            entry["heatmap"] = str(path.relative_to(out.root))
        entries.append(entry)
    return entries

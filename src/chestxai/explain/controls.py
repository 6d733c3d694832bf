"""Does a method beat its controls? Paired comparisons with the random map, and the warnings list.

Every figure a method gets sits beside the random-map control on the *same* items, so the honest
comparison is paired: per item, method minus control. A method **beats** the control on a
metric when the mean difference goes the metric's good way by more than two standard errors
(about a 95% paired test, normal approximation; stated in the output as ``rule``). With fewer
than two paired items nothing can be told, and the entry says so.

:func:`entry_warnings` collects, for one ``explain_metrics.json`` entry, every reason not to trust
its maps, in plain sentences: a CAM grid coarser than :data:`MIN_GRID` per side, heatmap mass on
the border or outside the lungs (:mod:`chestxai.explain.anatomy`), maps that hardly change from
image to image (Arun et al.'s random-pairs baseline, :mod:`chestxai.explain.map_agreement`), a
metric that does not beat the control, and a failed randomisation sanity check
(:mod:`chestxai.explain.sanity`). The report shows them and scripts can act on them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chestxai.explain.anatomy import anatomy_warnings
from chestxai.explain.map_agreement import image_independence

MIN_GRID = 7  # a CAM grid under 7 x 7 cells carries little spatial information
SE_MULTIPLE = 2.0
RULE = "mean paired difference (method - random) in the metric's good direction by > 2 standard errors"
#: per-item score column -> (reported name, higher is better)
COMPARED = {
    "hit": ("pointing_game", True),
    "iobb": ("iobb", True),
    "energy": ("energy", True),
    "deletion_auc": ("deletion_auc", False),
    "insertion_auc": ("insertion_auc", True),
    "road": ("road", True),
}


def paired_comparison(method: pd.Series, control: pd.Series, higher_is_better: bool) -> dict | None:
    """Mean and standard error of ``method - control`` over items both measured; ``beats``:
    True/False by :data:`RULE`, None with fewer than two pairs. None when nothing was measured."""
    both = pd.DataFrame({"m": method.to_numpy(float), "c": control.to_numpy(float)}).dropna()
    if both.empty:
        return None
    diff = (both["m"] - both["c"]).to_numpy()
    n = len(diff)
    mean = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else None
    good = mean if higher_is_better else -mean
    beats = None if se is None else bool(good > SE_MULTIPLE * se) if se > 0 else bool(good > 0)
    return {
        "n": n,
        "method": float(both["m"].mean()),
        "random": float(both["c"].mean()),
        "diff": mean,
        "se": se,
        "higher_is_better": higher_is_better,
        "beats": beats,
    }


def versus_control(scores: pd.DataFrame, control_scores: pd.DataFrame) -> dict:
    """:func:`paired_comparison` of every score column both frames hold (rows are the same items)."""
    if len(scores) != len(control_scores):
        raise ValueError(
            f"method and control were measured on different items ({len(scores)} vs {len(control_scores)})"
        )
    out: dict = {"rule": RULE}
    for col, (name, higher) in COMPARED.items():
        if col in scores and col in control_scores:
            cmp = paired_comparison(scores[col], control_scores[col], higher)
            if cmp is not None:
                out[name] = cmp
    return out


def _control_warnings(method: str, vs: dict | None, score: str | None) -> list[str]:
    out = []
    for name, cmp in (vs or {}).items():
        if not isinstance(cmp, dict):
            continue
        unit = f" (on {score}s)" if score and name in ("deletion_auc", "insertion_auc", "road") else ""
        better = "higher" if cmp["higher_is_better"] else "lower"
        if cmp["beats"] is None:
            out.append(
                f"{method}: {name}{unit} measured on {cmp['n']} item only; too few to compare with random"
            )
        elif not cmp["beats"]:
            out.append(
                f"{method} does not beat the random control on {name}{unit}: {cmp['method']:.3f} vs random "
                f"{cmp['random']:.3f} ({better} is better; paired difference {cmp['diff']:+.3f} +/- "
                f"{cmp['se'] or 0:.3f} SE over {cmp['n']} items)"
            )
    return out


def entry_warnings(entry: dict) -> list[str]:
    """Every warning for one method entry of ``explain_metrics.json`` (empty for the control)."""
    method = entry.get("method", "?")
    if entry.get("is_control"):
        return []
    out = []
    grid = entry.get("grid")
    if grid and min(grid) < MIN_GRID:
        out.append(
            f"{method}: the map at {entry.get('layer')} is a {grid[0]}x{grid[1]} grid (under {MIN_GRID}x{MIN_GRID}); "
            f"its maximum can only fall on one of {grid[0] * grid[1]} cells. Explain an earlier layer "
            f"(--layer, or --compare-layers) or train at a higher resolution."
        )
    independent = image_independence(entry["random_pairs"], method) if entry.get("random_pairs") else None
    if independent:
        out.append(independent)
    out += anatomy_warnings(entry.get("anatomy"), method)
    score = (entry.get("faithfulness") or {}).get("score")
    out += _control_warnings(method, entry.get("vs_control"), score)
    sanity = entry.get("sanity")
    if sanity and sanity.get("passed") is False:
        out.append(f"{method}: sanity check {sanity['verdict']}")
    return out

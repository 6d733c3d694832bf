"""``compare_layers``: one method at several target layers of one run, ranked like ``compare_methods``.

Which layer a CAM reads matters more than which CAM (measured on the lesion benchmark: pointing
game 0.10 at ResNet-18's ``layer4`` vs 0.84 at ``layer2``), and the default last layer does not
localize small findings. So a run can rank its layers: every layer (default: the last stage at
each resolution, :func:`chestxai.explain.layers.candidate_layers`) is explained on the same items,
beside the random control *at that layer* (the control's grid is the layer's), and scored with
the same localization, faithfulness and border-energy figures.

Ranking: with ground truth, by pointing game, then mean IoBB, then energy; without, by ROAD, then
insertion AUC. The **recommended** layer is the top-ranked one whose pointing game beats its
random control (:mod:`chestxai.explain.controls`); without ground truth nothing is recommended (a
faithfulness ranking does not say where the finding is), and the outputs say so.

Writes ``RUN/explain_layers.csv`` / ``.md`` and a ``layer_comparison`` entry (per method and split)
in ``explain_metrics.json``; ``cams/`` and the method's own entry are left as they were (they
belong to ``chestxai explain --layer``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from chestxai.atomic import write_text
from chestxai.explain.controls import versus_control
from chestxai.explain.layers import candidate_layers, resolve_layer
from chestxai.explain.methods import CONTROL, get_method
from chestxai.explain.run import (
    RANK_COLUMNS_GT,
    RANK_COLUMNS_NO_GT,
    comparison_markdown,
    measure_selection,
    open_explained,
    run_sanity,
    select_items,
)
from chestxai.explain.settings import ExplainSettings
from chestxai.explain.store import update_metrics
from chestxai.rundir import explain_key

log = logging.getLogger(__name__)


def _row(layer: str, res, control, check: dict | None) -> dict:
    row: dict = {
        "layer": layer,
        "grid": "x".join(map(str, res.grid)) if res.grid else "",
        "n": len(res.scores),
    }
    loc, cloc = res.localization(), control.localization()
    if loc:
        for k in ("pointing_game", "iobb", "energy"):
            row[k] = loc["overall"][k]
            row[f"{k}_random"] = cloc["overall"][k]
    faith, cfaith = res.faithfulness(), control.faithfulness()
    if faith:
        for k in ("deletion_auc", "insertion_auc", "road"):
            row[k] = faith[k]
            row[f"{k}_random"] = cfaith[k]
    vs = versus_control(res.scores, control.scores)
    key = "pointing_game" if loc else "road"
    row["beats_random"] = (vs.get(key) or {}).get("beats")
    if res.anatomy:
        row["border_energy"] = res.anatomy["border_energy"]
    if check is not None:
        row["sanity_passed"] = check["passed"]
    return row


def compare_layers(
    run_dir: str | Path,
    method: str = "gradcam",
    layers: Sequence[str] | None = None,
    finding: str | None = None,
    split: str = "test",
    images: Sequence[str | Path] | None = None,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    limit: int | None = None,
    settings: ExplainSettings | None = None,
    device: str = "cpu",
    progress: bool = False,
    sanity: bool = False,
) -> pd.DataFrame:
    """``method`` at each of ``layers`` (default: :func:`candidate_layers`) on the same items, ranked.

    Returns the table written to ``RUN/explain_layers.csv`` (``rank``, ``layer``, ``grid``, figures
    with their ``*_random`` controls, ``beats_random``, ``recommended``)."""
    settings = settings or ExplainSettings()
    if method == CONTROL:
        raise ValueError(
            "--compare-layers ranks a method against the random control; pick a method, not 'random'"
        )
    if get_method(method).final_layer_only:
        raise ValueError(f"{method} is defined on the final feature map only; compare layers of e.g. gradcam")
    trained = open_explained(run_dir, device)
    run, model, size = trained.run, trained.model, int(trained.preprocess["size"])
    names = [resolve_layer(model, name)[0] for name in layers] if layers else candidate_layers(model, size)
    names = list(dict.fromkeys(names))
    sel = select_items(trained, finding, split, images, boxes, masks, limit, settings.batch_size)
    rows = []
    for name in tqdm(names, desc=f"{method} layers", disable=not progress, leave=False):
        res = measure_selection(trained, sel, method, settings, name)
        control = measure_selection(trained, sel, CONTROL, settings, name)
        check = run_sanity(trained, sel, method, name, settings) if sanity else None
        rows.append(_row(name, res, control, check))
    table = pd.DataFrame(rows)
    has_truth = "pointing_game" in table
    rank_by = [c for c in (RANK_COLUMNS_GT if has_truth else RANK_COLUMNS_NO_GT) if c in table]
    if rank_by:
        table = table.sort_values(rank_by, ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    winners = table[table["beats_random"] == True] if has_truth else table.iloc[0:0]  # noqa: E712
    recommended = str(winners.iloc[0]["layer"]) if len(winners) else None
    table["recommended"] = table["layer"] == recommended
    if not has_truth:
        reason = "no ground truth among the explained items: no layer is recommended (ranked by ROAD)"
    elif recommended is None:
        reason = "no layer's pointing game beats the random control at that layer"
    else:
        reason = f"{recommended}: the best pointing game that beats the random control at its layer"
    summary = {
        "method": method,
        "split": sel.split,
        "images": sel.source,
        "n_items": len(sel.items),
        "ranked_by": rank_by,
        "recommended": recommended,
        "reason": reason,
        "faithfulness_score": settings.faithfulness_score,
        "table": table.replace({np.nan: None}).to_dict(orient="records"),
    }
    update_metrics(run.root, {}, sel.skipped, layer_comparison=summary)
    write_text(run.explain_layers_csv, table.to_csv(index=False))
    title = f"Target layers of {method} compared"
    md = comparison_markdown(table, sel, settings, title=title, drop="") + f"\nRecommendation: {reason}.\n"
    write_text(run.explain_layers_md, md)
    log.info("layers of %s ranked (%s); recommended: %s", method, explain_key(method, sel.split), recommended)
    return table

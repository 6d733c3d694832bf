"""The explanation part of a report: heatmap overlays sorted into true/false positives/negatives,
and the localization metrics the explanation stage measured.

Inputs (written by ``chestxai explain``): ``RUN/cams/index.csv`` with columns ``image_id, label,
method, split, overlay`` (a PNG path relative to ``RUN``) and ``RUN/explain_metrics.json``. The
gallery shows the evaluated split's heatmaps. The outcome of each (image, label) comes from
``predictions.csv`` and the thresholds in ``metrics.json`` (argmax for multi-class), i.e. the
decisions the metrics above describe.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from chestxai.report.html import data_uri, esc, paragraph, table
from chestxai.rundir import PRIMARY_SPLIT, RunDir
from chestxai.rundir.jsonfile import read_json
from chestxai.rundir.predictions import read_predictions
from chestxai.rundir.tables import read_cam_index

log = logging.getLogger(__name__)
OUTCOMES = {
    "TP": "True positives",
    "FP": "False positives",
    "FN": "False negatives",
    "TN": "True negatives",
}


def outcomes(index: pd.DataFrame, run: RunDir, metrics: dict | None) -> pd.DataFrame:
    """``index`` with ``p``, ``y`` and ``outcome`` (TP/FP/FN/TN; empty when unknown) per row."""
    out = index.copy()
    out["p"], out["y"], out["outcome"] = np.nan, np.nan, ""
    if not run.predictions.exists():
        return out
    preds = read_predictions(run.predictions)
    split = (metrics or {}).get("split")
    if split and (preds.frame["split"] == split).any():
        preds = preds.select(split)
    pos = {iid: i for i, iid in enumerate(preds.frame["image_id"])}
    col = {name: c for c, name in enumerate(preds.label_names)}
    th = ((metrics or {}).get("thresholds") or {}).get("values") or {}
    multiclass = (metrics or {}).get("task") == "multiclass"
    for k, r in out.iterrows():
        i, c = pos.get(r["image_id"]), col.get(r["label"])
        if i is None or c is None:
            continue
        p, y = preds.probs[i, c], preds.targets[i, c]
        decided = preds.probs[i].argmax() == c if multiclass else p >= th.get(r["label"], 0.5)
        out.at[k, "p"], out.at[k, "y"] = p, y
        if not np.isnan(y):
            out.at[k, "outcome"] = ("T" if bool(decided) == bool(y) else "F") + ("P" if decided else "N")
    return out


def gallery_section(run: RunDir, metrics: dict | None, per_outcome: int = 8) -> str:
    index = read_cam_index(run)
    if index is None:
        return paragraph("No explanations: run `chestxai explain RUN` to add heatmaps (RUN/cams/).", "note")
    split = (metrics or {}).get("split", PRIMARY_SPLIT)
    index = index[index["split"].isin([split, ""])]  # "": explained before splits were recorded
    rows = outcomes(index, run, metrics)
    body = paragraph(
        f"{len(rows)} heatmaps ({', '.join(sorted(rows['method'].unique()))}); up to {per_outcome} per outcome, "
        "most confident first."
    )
    for key, title in OUTCOMES.items():
        sel = rows[rows["outcome"] == key]
        if not len(sel):
            continue
        confident = (sel["p"] - 0.5).abs().sort_values(ascending=False).index
        items = []
        for _, r in sel.loc[confident[:per_outcome]].iterrows():
            path = (run.root / r["overlay"]).resolve()
            if not path.is_file():
                log.warning("overlay %s listed in cams/index.csv is missing", path)
                continue
            caption = f"{r['image_id']} - {r['label']} ({r['method']}): p={r['p']:.2f}, y={int(r['y'])}"
            items.append(
                f'<figure><img src="{data_uri(path)}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
            )
        if items:
            body += f'<h3>{esc(title)} ({len(sel)})</h3><div class="gallery">{"".join(items)}</div>'
    unmatched = int((rows["outcome"] == "").sum())
    if unmatched:
        body += paragraph(
            f"{unmatched} heatmaps have no prediction or no known label and are not shown.", "note"
        )
    return body


def localization_section(run: RunDir) -> str:
    path = run.explain_metrics
    if not path.exists():
        return paragraph("No explain_metrics.json (localization is measured by `chestxai explain`).", "note")
    data = read_json(path)
    if "localization_table" not in data:  # an older or foreign file: show whatever it holds
        return json_tables(data, "Localization and faithfulness (explain_metrics.json)")
    out = paragraph(
        "Each figure sits beside the random-map control (<code>*_random</code>) computed on the same images; "
        "a method that does not beat its control does not localize."
    )
    out += json_tables(
        data["localization_table"], "Localization against ground truth, per method and finding"
    )
    if data.get("faithfulness_table"):
        out += json_tables(data["faithfulness_table"], "Faithfulness (deletion/insertion AUC, ROAD)")
    if data.get("skipped"):
        out += json_tables(data["skipped"], "Skipped items")
    return out


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "n/a"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def json_tables(data, caption: str) -> str:
    """Render metrics JSON of unknown shape as tables: a list of records, a mapping of records
    (one row per key), flat scalars; nested mappings get one table per key."""
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        cols = list(dict.fromkeys(k for r in data for k in r))
        return table(cols, [[_cell(r.get(c)) for c in cols] for r in data], caption)
    if isinstance(data, dict):
        scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
        records = {
            k: v
            for k, v in data.items()
            if isinstance(v, dict) and all(not isinstance(x, dict) for x in v.values())
        }
        rest = {k: v for k, v in data.items() if k not in scalars and k not in records}
        out = table(["", "value"], [(k, _cell(v)) for k, v in scalars.items()], caption) if scalars else ""
        if records:
            cols = list(dict.fromkeys(k for r in records.values() for k in r))
            out += table(
                ["", *cols], [[k, *(_cell(r.get(c)) for c in cols)] for k, r in records.items()], caption
            )
        for k, v in rest.items():
            out += json_tables(v, f"{caption}: {k}")
        return out
    return f"<pre>{esc(json.dumps(data, indent=2))}</pre>"


def has_explanations(run: RunDir) -> bool:
    return run.cams_index.exists() or run.explain_metrics.exists()

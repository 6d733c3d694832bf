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

from chestxai.explain.map_agreement import IMAGE_INDEPENDENT_SPEARMAN, image_independence
from chestxai.metrics.decisions import DEFAULT_THRESHOLD, decide
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
    # predictions.csv holds the probabilities the thresholds were chosen on (calibrated ones after
    # `evaluate --calibrated`), so no temperature is applied here
    task = (metrics or {}).get("task")
    decisions = decide(preds.probs, task, [th.get(n, DEFAULT_THRESHOLD) for n in preds.label_names])
    for k, r in out.iterrows():
        i, c = pos.get(r["image_id"]), col.get(r["label"])
        if i is None or c is None:
            continue
        p, y, decided = preds.probs[i, c], preds.targets[i, c], decisions[i, c]
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
    body += _independence_notes(run, sorted(rows["method"].unique()), split)
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


def _independence_notes(run: RunDir, shown: list[str], split: str) -> str:
    """Above the overlays, per method shown: whether its maps change from image to image, in words
    with Arun et al.'s random-pairs figure (``random_pairs`` of explain_metrics.json)."""
    if not run.explain_metrics.exists():
        return ""
    methods = read_json(run.explain_metrics).get("methods") or {}
    out = ""
    for method in shown:
        entry = methods.get(method if split == PRIMARY_SPLIT else f"{method}@{split}") or {}
        line = independence_line(method, entry)
        if line:
            out += paragraph(line, "warning" if image_independence(entry["random_pairs"], method) else None)
    return out


def independence_line(method: str, entry: dict) -> str | None:
    """One sentence on how alike ``method``'s maps of different images are: the image-independence
    warning (:func:`chestxai.explain.map_agreement.image_independence`) when it applies, else the
    figure that says they differ; None when the entry has no ``random_pairs`` or most of its maps
    are empty (constant maps have no ranks; the warnings say they are empty)."""
    base = entry.get("random_pairs")
    if not base or base.get("spearman") is None:
        return None
    if 2 * base.get("n_empty_maps", 0) > base.get("n_maps", 0):  # the warnings say the maps are empty
        return None
    said = image_independence(base, method)
    if said:
        return said + "."
    return (
        f"{method}'s maps differ from image to image: {base['n_pairs']} random pairs of maps of different "
        f"images have mean |Spearman| {base['spearman']:.2f} (< {IMAGE_INDEPENDENT_SPEARMAN:g}) and mean SSIM "
        f"{base['ssim']:.2f} (Arun et al.'s baseline)."
    )


def localization_section(run: RunDir) -> str:
    """What ``chestxai explain`` measured, each figure beside its random control: warnings first
    (what not to trust), localization with the sanity verdict beside it, the sanity check,
    faithfulness with a plain sentence wherever a method does not beat the control, border /
    outside-lung energy, and the layer comparison with its recommendation."""
    path = run.explain_metrics
    if not path.exists():
        return paragraph("No explain_metrics.json (localization is measured by `chestxai explain`).", "note")
    data = read_json(path)
    if "localization_table" not in data:  # an older or foreign file: show whatever it holds
        return json_tables(data, "Localization and faithfulness (explain_metrics.json)")
    methods = data.get("methods") or {}
    out = (
        "<p>Each figure sits beside the random-map control (columns ending in <code>_random</code>) "
        "computed on the same images at the same layer; a method that does not beat its control has not "
        "shown that it localizes or that its map is faithful.</p>"
    )
    out += _warnings_list(data)
    out += _pairs_part(methods)
    if data["localization_table"]:
        rows = [{**r, "sanity": _sanity_word(methods, r)} for r in data["localization_table"]]
        out += json_tables(rows, "Localization against ground truth, per method and finding")
    else:
        out += paragraph(
            "Localization against ground truth: none measured. The explained images have no ground-truth "
            "boxes or masks for the explained findings, so pointing game, IoU/IoBB and energy are not computed; "
            "pass --boxes or --masks to `chestxai explain` (or explain a dataset that has them).",
            "note",
        )
    out += _sanity_part(data)
    if data.get("faithfulness_table"):
        out += json_tables(data["faithfulness_table"], "Faithfulness (deletion/insertion AUC, ROAD)")
        out += paragraph(
            "Deletion AUC: lower is better; insertion AUC and ROAD: higher is better. Scores are the model's "
            "logits unless the score column says otherwise (a saturated probability does not move when "
            "evidence is removed). *_beats_random: the paired difference to the control over the same items "
            "exceeds two standard errors."
        )
        out += _not_beaten(methods)
    if data.get("anatomy_table"):
        out += json_tables(data["anatomy_table"], "Heatmap mass on the image border and outside the lungs")
        first = data["anatomy_table"][0]
        out += paragraph(
            f"border_energy: share of the heatmap mass within border_px of the image edge (1/16 of the map's "
            f"side; {first['border_px']} px here), where a uniform map puts border_area_share; a warning is "
            "raised at twice that share. outside_lungs: share of the mass outside the lung masks, where the "
            "data has them (warning at 50%)."
        )
    out += _layers_part(data)
    if data.get("skipped"):
        out += json_tables(data["skipped"], "Skipped items")
    return out


def _sanity_word(methods: dict, row: dict) -> str:
    key = (
        row["method"]
        if row.get("split", PRIMARY_SPLIT) == PRIMARY_SPLIT
        else f"{row['method']}@{row['split']}"
    )
    sanity = (methods.get(key) or {}).get("sanity")
    if row["method"] == "random":
        return "control"
    if not sanity:
        return "not run (--sanity)"
    return "passed" if sanity.get("passed") else "FAILED"


def _pairs_part(methods: dict) -> str:
    """Arun et al.'s random-pairs baseline of every method's maps, with a sentence per method."""
    rows = [
        {
            "method": key,
            "layer": e.get("layer"),
            "pairs": e["random_pairs"].get("n_pairs"),
            "ssim": e["random_pairs"].get("ssim"),
            "spearman": e["random_pairs"].get("spearman"),
        }
        for key, e in sorted(methods.items())
        if e.get("random_pairs")
    ]
    if not rows:
        return ""
    out = json_tables(
        rows, "Maps of different images compared: mean SSIM and |Spearman| of random pairs (Arun et al. 2021)"
    )
    for key, e in sorted(methods.items()):
        line = independence_line(key, e) if not e.get("is_control") else None
        if line:
            out += paragraph(line, "warning" if image_independence(e["random_pairs"], key) else None)
    return out


def _warnings_list(data: dict) -> str:
    items = [(k, w) for k, ws in (data.get("warnings") or {}).items() for w in ws]
    if not items:
        return ""
    lis = "".join(f"<li>{esc(w)}</li>" for _, w in items)
    return f'<div class="warning"><p><strong>Warnings ({len(items)})</strong></p><ul>{lis}</ul></div>'


def _sanity_part(data: dict) -> str:
    rows = data.get("sanity_table") or []
    if not rows:
        return paragraph(
            "Sanity check (model parameter randomisation, Adebayo et al. 2018): not run; "
            "`chestxai explain RUN --sanity` adds it.",
            "note",
        )
    out = json_tables(rows, "Sanity check: similarity of maps after re-initialising every block (cascading)")
    for key, entry in sorted((data.get("methods") or {}).items()):
        sanity = entry.get("sanity")
        if not sanity:
            continue
        out += paragraph(f"{key}: {sanity['verdict']}.", None if sanity.get("passed") else "warning")
        if sanity.get("baseline_ssim") is not None:
            base = sanity.get("baseline") or {}
            rho = base.get("spearman")
            out += paragraph(
                f"Read it against Arun et al.'s baseline: {base.get('n_pairs', 50)} random pairs of the trained "
                f"model's maps of different images have mean SSIM {sanity['baseline_ssim']:.2f}"
                + (f" and |Spearman| {rho:.2f}" if rho is not None else "")
                + "; a randomised model's maps no more like the trained ones than that have changed as much as "
                "two unrelated maps."
            )
        steps = [
            {
                "mode": mode,
                **{k: r[k] for k in ("randomised", "spearman", "ssim", "n_constant")},
                "output_change": r.get("output_change"),
                "why": r.get("why") or "",
            }
            for mode in ("cascading", "independent")
            for r in sanity.get(mode) or []
        ]
        if steps:
            out += json_tables(
                steps,
                f"{key} at {sanity.get('layer')}: mean |Spearman| and SSIM to the trained maps, "
                f"{sanity.get('n_images')} images, after re-initialising the named block "
                "(cascading: and every block above it); output_change: how much the re-initialised block's "
                f"output moved; why: the measured reasons a row stays at |Spearman| >= {sanity.get('threshold')}",
            )
    return out


def _not_beaten(methods: dict) -> str:
    out = ""
    for key, entry in sorted(methods.items()):
        vs = entry.get("vs_control") or {}
        lost = [k for k, v in vs.items() if isinstance(v, dict) and v.get("beats") is False]
        if lost:
            out += paragraph(
                f"{key} does not beat the random control on {', '.join(lost)}: on these figures its maps "
                "are no better than noise. Possible reasons, in the warnings above where measured: empty or "
                "coarse maps, a diffuse finding that no compact region carries, or a decision that does not "
                "rest where the map points (compare layers and methods: `chestxai explain RUN "
                "--compare-layers` / `--compare-methods`).",
                "warning",
            )
    return out


def _layers_part(data: dict) -> str:
    out = ""
    for key, comp in sorted((data.get("layer_comparison") or {}).items()):
        out += json_tables(comp.get("table") or [], f"Target layers of {key} compared ({comp.get('images')})")
        if comp.get("recommended"):
            out += paragraph(f"Recommended layer for {key}: {comp['recommended']} ({comp.get('reason')}).")
        else:
            out += paragraph(f"No layer recommended for {key}: {comp.get('reason')}.", "note")
    return out


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "n/a"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


#: leading record fields that name a row: repeated in every part of a table split for width
ROW_KEYS = ("method", "layer", "finding", "label", "split", "run", "name")


def json_tables(data, caption: str) -> str:
    """Render metrics JSON of unknown shape as tables: a list of records, a mapping of records
    (one row per key), flat scalars; nested mappings get one table per key."""
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        cols = list(dict.fromkeys(k for r in data for k in r))
        keys = next((i for i, c in enumerate(cols) if c not in ROW_KEYS), len(cols))
        return table(cols, [[_cell(r.get(c)) for c in cols] for r in data], caption, keys=max(1, keys))
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

"""Explain a trained run: ``explain_run`` (one method) and ``compare_methods`` (all, ranked).

Both read only the run directory (checkpoint, splits.csv) and the prepared cache the checkpoint
names (``config["data"]["cache_dir"]``), resolved and checked by
:func:`chestxai.evaluation.inputs.resolve_inputs` exactly as ``evaluate`` does, and write under
``RUN/cams/`` and ``RUN/explain_metrics.json`` (layout in :mod:`chestxai.explain.store`). The
random-map control is computed on the same items beside every method, so each figure has its
chance level next to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chestxai.atomic import write_text
from chestxai.evaluation.inputs import ModelFacts, resolve_inputs
from chestxai.explain.evaluate import MethodResult, measure_method, model_inputs
from chestxai.explain.items import (
    ImageSet,
    Item,
    build_items,
    cache_images,
    cache_mask_lookup,
    csv_mask_lookup,
    decode_files,
    mask_labels,
    read_boxes_csv,
)
from chestxai.explain.methods import CONTROL, UnsupportedMethodError, get_method, list_methods
from chestxai.explain.settings import ExplainSettings
from chestxai.explain.store import method_entry, update_index, update_metrics, write_method
from chestxai.models.checkpoint import load_model
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble

log = logging.getLogger(__name__)


@dataclass
class ExplainResult:
    """What ``explain_run`` produced: per-item scores of the method and of its random control."""

    run_dir: Path
    method: str
    layer: str
    scores: pd.DataFrame
    control_scores: pd.DataFrame
    metrics: dict  # this method's entry in explain_metrics.json
    skipped: list[dict] = field(default_factory=list)


@dataclass
class Selection:
    items: list[Item]
    skipped: list[dict]
    source: str
    split: str  # the split explained, "files" for --images (names the outputs)


def load_run(run_dir: str | Path, device: str = "cpu"):
    """``(RunDir, model in eval mode, checkpoint dict)``; an ensemble is refused in one line: a
    heatmap explains one network's gradients, and the members' maps would not share a layer."""
    run = RunDir(Path(run_dir))
    run.require_dir()
    if run.is_ensemble:
        members = ", ".join(str(m) for m in read_ensemble(run).members)
        raise ValueError(
            f"{run.root} is an ensemble; explanations need a single model: explain its members instead "
            f"(`chestxai explain MEMBER` for each of {members})"
        )
    model, ckpt = load_model(run.require_checkpoint(), device=device)
    return run, model, ckpt


def _top_outputs(model, preprocess: dict, batch_size: int):
    device = next(model.parameters()).device

    def top(images: list[np.ndarray]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for lo in range(0, len(images), batch_size):
                x = model_inputs(images[lo : lo + batch_size], preprocess, device)
                out.append(model.probabilities(model(x)).float().cpu().numpy().argmax(axis=1))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    return top


def select_items(
    run: RunDir,
    model,
    ckpt: dict,
    finding: str | None = None,
    split: str = "test",
    images: Sequence[str | Path] | None = None,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 16,
) -> Selection:
    """The run's (image, finding) items with ground truth; see :mod:`chestxai.explain.items`."""
    label_names = list(ckpt["label_names"])
    mask_lookup = csv_mask_lookup(masks) if masks else None
    mask_pairs = pd.read_csv(masks, dtype=str)[["image_id", "label"]] if masks else None
    gt_boxes = read_boxes_csv(boxes) if boxes else None
    if images:
        image_set: ImageSet = decode_files(images)
        if not image_set.ids:
            raise ValueError(f"none of the {len(images)} files could be decoded: {image_set.skipped}")
    else:
        inputs = resolve_inputs(run, ModelFacts.from_checkpoint(ckpt, run.checkpoint))
        cache = inputs.cache
        image_set = cache_images(cache, inputs.rows(split), split)
        if gt_boxes is None:
            gt_boxes = cache.boxes
        if mask_lookup is None:
            mask_lookup, mask_pairs = cache_mask_lookup(cache), mask_labels(cache)
    items, skipped = build_items(
        image_set,
        label_names,
        finding=finding,
        boxes=gt_boxes,
        mask_lookup=mask_lookup,
        mask_pairs=mask_pairs,
        top_outputs=_top_outputs(model, ckpt["preprocess"], batch_size),
        limit=limit,
    )
    if not items:
        raise ValueError(
            f"nothing to explain among {len(image_set.ids)} images ({image_set.source}); skipped: {skipped}"
        )
    return Selection(items, image_set.skipped + skipped, image_set.source, "files" if images else split)


def explain_run(
    run_dir: str | Path,
    method: str = "gradcam",
    finding: str | None = None,
    split: str = "test",
    images: Sequence[str | Path] | None = None,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    layer: str | None = None,
    limit: int | None = None,
    settings: ExplainSettings | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> ExplainResult:
    """Explain the run's images with ``method``; write overlays, boxes, heatmaps and metrics.

    Returns the per-item scores of the method and of the random control on the same items.
    """
    settings = settings or ExplainSettings()
    get_method(method)  # an unknown name fails before any work
    run, model, ckpt = load_run(run_dir, device)
    sel = select_items(run, model, ckpt, finding, split, images, boxes, masks, limit, settings.batch_size)
    result = measure_method(model, sel.items, method, ckpt["preprocess"], settings, layer, progress)
    control = (
        result
        if method == CONTROL
        else measure_method(model, sel.items, CONTROL, ckpt["preprocess"], settings, result.layer)
    )
    rows = write_method(run.root, sel.items, result, settings.overlays, sel.split)
    if control is not result:
        write_method(run.root, sel.items, control, overlays=False, split=sel.split)
    update_index(run.root, rows, [method], sel.split)
    entry = method_entry(result, control, sel.source, sel.skipped, sel.split)
    entries = {method: entry}
    if control is not result:
        entries[CONTROL] = method_entry(control, control, sel.source, sel.skipped, sel.split)
    update_metrics(run.root, entries, sel.skipped)
    return ExplainResult(run.root, method, result.layer, result.scores, control.scores, entry, sel.skipped)


RANK_COLUMNS_GT = ["pointing_game", "iobb", "energy"]


def _ranking_row(res: MethodResult) -> dict:
    row: dict = {"method": res.method, "layer": res.layer, "n": len(res.scores)}
    loc = res.localization()
    if loc:
        row.update({k: v for k, v in loc["overall"].items() if k != "n"})
        row["n_scored"] = loc["overall"]["n"]
    faith = res.faithfulness()
    if faith:
        row.update({k: faith[k] for k in ("deletion_auc", "insertion_auc", "road")})
    row["images_per_s"] = res.images_per_second
    return row


def compare_methods(
    run_dir: str | Path,
    methods: Sequence[str] | None = None,
    finding: str | None = None,
    split: str = "test",
    images: Sequence[str | Path] | None = None,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    limit: int | None = None,
    settings: ExplainSettings | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """Every method (default: all registered) on the same items, ranked in one table.

    Ranking: by pointing game, then mean IoBB, then energy when there is ground truth; otherwise
    by ROAD, then insertion AUC. Methods that do not apply to the model (CAM on a non-GAP model,
    the PCAM map without a PCAM head) are listed as skipped. Writes ``RUN/explain_compare.csv`` and
    ``.md`` (the latest comparison) and updates ``cams/`` and ``explain_metrics.json`` for every method.
    """
    settings = settings or ExplainSettings()
    names = list(methods) if methods else list_methods()
    for name in names:
        get_method(name)
    if CONTROL not in names:
        names.append(CONTROL)
    run, model, ckpt = load_run(run_dir, device)
    sel = select_items(run, model, ckpt, finding, split, images, boxes, masks, limit, settings.batch_size)
    control = measure_method(model, sel.items, CONTROL, ckpt["preprocess"], settings)
    results: dict[str, MethodResult] = {CONTROL: control}
    not_applicable: dict[str, str] = {}
    for name in names:
        if name == CONTROL:
            continue
        try:
            results[name] = measure_method(
                model, sel.items, name, ckpt["preprocess"], settings, None, progress
            )
        except UnsupportedMethodError as exc:
            log.info("skipping %s: %s", name, exc)
            not_applicable[name] = str(exc)
    index_rows = [
        write_method(run.root, sel.items, res, settings.overlays, sel.split) for res in results.values()
    ]
    update_index(run.root, pd.concat(index_rows, ignore_index=True), list(results), sel.split)
    entries = {n: method_entry(r, control, sel.source, sel.skipped, sel.split) for n, r in results.items()}
    update_metrics(run.root, entries, sel.skipped)

    table = pd.DataFrame([_ranking_row(r) for r in results.values()])
    if "pointing_game" in table:
        table = table.sort_values(RANK_COLUMNS_GT, ascending=False, kind="stable")
    elif "road" in table:
        table = table.sort_values(["road", "insertion_auc"], ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    for name, reason in not_applicable.items():
        table.loc[len(table)] = {"method": name, "layer": f"not applicable: {reason}"}
    write_text(run.explain_compare_csv, table.to_csv(index=False))
    write_text(run.explain_compare_md, comparison_markdown(table, sel, settings))
    return table


def comparison_markdown(table: pd.DataFrame, sel: Selection, settings: ExplainSettings) -> str:
    """The ranking as a Markdown table, with what was measured stated above it."""
    cols = [c for c in table.columns if c != "layer"]
    lines = [
        "# Explanation methods compared",
        "",
        f"{len(sel.items)} items ({sel.source}); boxes at threshold {settings.threshold} of the heatmap maximum, "
        f"pointing-game tolerance {settings.tolerance} px; `random` is the control. Deletion AUC: lower is better; "
        f"insertion AUC and ROAD: higher is better.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for _, row in table.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float):
                cells.append("" if np.isnan(v) else f"{v:.3f}")
            else:
                cells.append("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    skipped = table[table["layer"].astype(str).str.startswith("not applicable")]
    for _, row in skipped.iterrows():
        lines.append(f"\n- `{row['method']}`: {row['layer']}")
    return "\n".join(lines) + "\n"

"""Explain a trained run: ``explain_run`` (one method) and ``compare_methods`` (all, ranked);
``compare_layers`` (one method at several layers) is in :mod:`chestxai.explain.layer_compare`.

Both read only the run directory (checkpoint, splits.csv) and the prepared cache the checkpoint
names, opened as a :class:`~chestxai.models.trained_run.TrainedRun` and resolved and checked by
:meth:`~chestxai.models.trained_run.TrainedRun.inputs` exactly as ``evaluate`` does, and write under
``RUN/cams/`` and ``RUN/explain_metrics.json`` (layout in :mod:`chestxai.explain.store`). The
random-map control is computed on the same items beside every method, so each figure has its
chance level next to it. With ``sanity=True`` each method also gets the model-randomisation
sanity check (:mod:`chestxai.explain.sanity`) on the first ``settings.sanity_limit`` items; where
the cache (or ``--masks``) has lung masks, the heatmap mass outside them is measured.
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
from chestxai.explain.anatomy import is_anatomy_label
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
from chestxai.explain.measure import MethodResult, measure_method, model_inputs
from chestxai.explain.methods import CONTROL, UnsupportedMethodError, get_method, list_methods
from chestxai.explain.sanity import randomisation_similarity
from chestxai.explain.settings import ExplainSettings
from chestxai.explain.store import method_entry, update_index, update_metrics, write_method
from chestxai.metrics.markdown import markdown_table
from chestxai.models.trained_run import TrainedRun
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
    lung_masks: list[np.ndarray | None] = field(default_factory=list)  # per item, or empty


def open_explained(run_dir: str | Path, device: str | torch.device = "auto") -> TrainedRun:
    """The run to explain (``device``: ``auto`` too); an ensemble is refused in one line, before
    its members are read: a heatmap explains one network's gradients, and the members' maps would
    not share a layer."""
    run = RunDir(Path(run_dir))
    run.require_dir()
    if run.is_ensemble:
        members = ", ".join(str(m) for m in read_ensemble(run).members)
        raise ValueError(
            f"{run.root} is an ensemble; explanations need a single model: explain its members instead "
            f"(`chestxai explain MEMBER` for each of {members})"
        )
    return TrainedRun.open(run, device)


def _top_outputs(trained: TrainedRun, batch_size: int):
    """Per image, the output to explain when no finding is named and there is no ground truth: the
    top *positive* finding at the run's operating thresholds, else the top-scoring one
    (:func:`chestxai.explain.choice.choose_target`, as ``predict --explain`` and the service)."""
    from chestxai.explain.choice import choose_target
    from chestxai.metrics.decisions import decide

    model, preprocess, names = trained.model, trained.preprocess, trained.label_names
    device = next(model.parameters()).device
    t = trained.operating_thresholds()

    def top(images: list[np.ndarray]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for lo in range(0, len(images), batch_size):
                x = model_inputs(images[lo : lo + batch_size], preprocess, device)
                out.append(model.probabilities(model(x)).float().cpu().numpy())
        if not out:
            return np.zeros(0, np.int64)
        probs = np.concatenate(out)
        decided = decide(probs, trained.task, [t.values[n] for n in names], t.temperature)
        return np.array([choose_target(names, p, d).index for p, d in zip(probs, decided, strict=True)])

    return top


def select_items(
    trained: TrainedRun,
    finding: str | None = None,
    split: str = "test",
    images: Sequence[str | Path] | None = None,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 16,
) -> Selection:
    """The run's (image, finding) items with ground truth; see :mod:`chestxai.explain.items`."""
    label_names = trained.label_names
    mask_lookup = csv_mask_lookup(masks) if masks else None
    mask_pairs = pd.read_csv(masks, dtype=str)[["image_id", "label"]] if masks else None
    gt_boxes = read_boxes_csv(boxes) if boxes else None
    if images:
        image_set: ImageSet = decode_files(images)
        if not image_set.ids:
            raise ValueError(f"none of the {len(images)} files could be decoded: {image_set.skipped}")
    else:
        inputs = trained.inputs()
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
        top_outputs=_top_outputs(trained, batch_size),
        limit=limit,
    )
    if not items:
        raise ValueError(
            f"nothing to explain among {len(image_set.ids)} images ({image_set.source}); skipped: {skipped}"
        )
    lungs = _lung_masks(items, mask_lookup, mask_pairs)
    return Selection(
        items, image_set.skipped + skipped, image_set.source, "files" if images else split, lungs
    )


def _lung_masks(items: list[Item], mask_lookup, mask_pairs: pd.DataFrame | None) -> list[np.ndarray | None]:
    """Each item's lung-field mask (anatomy labels such as the COVID-19 collection's "Lungs"), or None."""
    if mask_lookup is None or mask_pairs is None or mask_pairs.empty:
        return []
    labels = sorted({str(lab) for lab in mask_pairs["label"] if is_anatomy_label(lab)})
    if not labels:
        return []
    out = []
    for it in items:
        found = [mask_lookup(it.image_id, lab, it.image.shape[:2]) for lab in labels]
        found = [m for m in found if m is not None]
        out.append(np.any(np.stack(found), axis=0) if found else None)
    return out


def measure_selection(
    trained: TrainedRun, sel: Selection, method: str, settings, layer=None, progress=False
) -> MethodResult:
    return measure_method(
        trained.model,
        sel.items,
        method,
        trained.preprocess,
        settings,
        layer,
        progress,
        sel.lung_masks or None,
    )


def run_sanity(
    trained: TrainedRun,
    sel: Selection,
    method: str,
    layer: str,
    settings: ExplainSettings,
    progress: bool = False,
) -> dict:
    """:func:`~chestxai.explain.sanity.randomisation_similarity` on the first ``settings.sanity_limit`` items."""
    items = sel.items[: settings.sanity_limit]
    x = model_inputs([it.image for it in items], trained.preprocess, trained.device)
    return randomisation_similarity(
        trained.model,
        x,
        method,
        layer,
        [it.index for it in items],
        seed=settings.seed,
        batch_size=settings.batch_size,
        options=settings.options_for(method),
        progress=progress,
    )


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
    sanity: bool = False,
) -> ExplainResult:
    """Explain the run's images with ``method``; write overlays, boxes, heatmaps and metrics.

    Returns the per-item scores of the method and of the random control on the same items.
    ``sanity``: also run the model-randomisation sanity check (not for the control itself).
    """
    settings = settings or ExplainSettings()
    get_method(method)  # an unknown name fails before any work
    trained = open_explained(run_dir, device)
    run = trained.run
    sel = select_items(trained, finding, split, images, boxes, masks, limit, settings.batch_size)
    result = measure_selection(trained, sel, method, settings, layer, progress)
    control = (
        result
        if method == CONTROL
        else measure_selection(trained, sel, CONTROL, settings, result.layer, progress)
    )
    check = (
        run_sanity(trained, sel, method, result.layer, settings, progress)
        if sanity and method != CONTROL
        else None
    )
    rows = write_method(run.root, sel.items, result, settings.overlays, sel.split)
    if control is not result:
        write_method(run.root, sel.items, control, overlays=False, split=sel.split)
    update_index(run.root, rows, [method], sel.split)
    entry = method_entry(result, control, sel.source, sel.skipped, sel.split, check)
    entries = {method: entry}
    if control is not result:
        entries[CONTROL] = method_entry(control, control, sel.source, sel.skipped, sel.split)
    update_metrics(run.root, entries, sel.skipped)
    return ExplainResult(run.root, method, result.layer, result.scores, control.scores, entry, sel.skipped)


#: how a comparison (of methods or of layers) is ranked: with ground truth, else without
RANK_COLUMNS_GT = ["pointing_game", "iobb", "energy"]
RANK_COLUMNS_NO_GT = ["road", "insertion_auc"]


def _ranking_row(res: MethodResult, entry: dict | None = None) -> dict:
    row: dict = {"method": res.method, "layer": res.layer, "n": len(res.scores)}
    loc = res.localization()
    if loc:
        row.update({k: v for k, v in loc["overall"].items() if k != "n"})
        row["n_scored"] = loc["overall"]["n"]
    faith = res.faithfulness()
    if faith:
        row.update({k: faith[k] for k in ("deletion_auc", "insertion_auc", "road")})
    if res.anatomy:
        row["border_energy"] = res.anatomy["border_energy"]
    if entry and entry.get("sanity"):
        row["sanity_passed"] = entry["sanity"]["passed"]
    if entry is not None:
        row["warnings"] = len(entry.get("warnings") or [])
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
    sanity: bool = False,
) -> pd.DataFrame:
    """Every method (default: all registered) on the same items, ranked in one table
    (``sanity``: each with the randomisation sanity check, its verdict a column).

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
    trained = open_explained(run_dir, device)
    run = trained.run
    sel = select_items(trained, finding, split, images, boxes, masks, limit, settings.batch_size)
    control = measure_selection(trained, sel, CONTROL, settings, None, progress)
    results: dict[str, MethodResult] = {CONTROL: control}
    checks: dict[str, dict] = {}
    not_applicable: dict[str, str] = {}
    for name in names:
        if name == CONTROL:
            continue
        try:
            results[name] = measure_selection(trained, sel, name, settings, None, progress)
            if sanity:
                checks[name] = run_sanity(trained, sel, name, results[name].layer, settings, progress)
        except UnsupportedMethodError as exc:
            log.info("skipping %s: %s", name, exc)
            not_applicable[name] = str(exc)
    index_rows = [
        write_method(run.root, sel.items, res, settings.overlays, sel.split) for res in results.values()
    ]
    update_index(run.root, pd.concat(index_rows, ignore_index=True), list(results), sel.split)
    entries = {
        n: method_entry(r, control, sel.source, sel.skipped, sel.split, checks.get(n))
        for n, r in results.items()
    }
    update_metrics(run.root, entries, sel.skipped)

    table = pd.DataFrame([_ranking_row(r, entries[n]) for n, r in results.items()])
    if "pointing_game" in table:
        table = table.sort_values(RANK_COLUMNS_GT, ascending=False, kind="stable")
    elif "road" in table:
        table = table.sort_values(RANK_COLUMNS_NO_GT, ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    for name, reason in not_applicable.items():
        table.loc[len(table)] = {"method": name, "layer": f"not applicable: {reason}"}
    write_text(run.explain_compare_csv, table.to_csv(index=False))
    write_text(run.explain_compare_md, comparison_markdown(table, sel, settings))
    return table


def comparison_markdown(
    table: pd.DataFrame,
    sel: Selection,
    settings: ExplainSettings,
    title: str = "Explanation methods compared",
    drop: str = "layer",
) -> str:
    """The ranking as a Markdown table, with what was measured stated above it."""
    cols = [c for c in table.columns if c != drop]
    lines = [
        f"# {title}",
        "",
        f"{len(sel.items)} items ({sel.source}); boxes at threshold {settings.threshold} of the heatmap maximum, "
        f"pointing-game tolerance {settings.tolerance} px; `random` is the control. Deletion AUC: lower is better; "
        f"insertion AUC and ROAD: higher is better; all three on the model's {settings.faithfulness_score}s. "
        f"`border_energy`: share of heatmap mass near the image border; `warnings`: how many sentences "
        f"explain_metrics.json holds for the row.",
        "",
        markdown_table(table[cols], float_format=".3f").rstrip("\n"),
    ]
    if "layer" in table:
        skipped = table[table["layer"].astype(str).str.startswith("not applicable")]
        for _, row in skipped.iterrows():
            lines.append(f"\n- `{row['method']}`: {row['layer']}")
    return "\n".join(lines) + "\n"

"""``build_scorecard``: every method x layer of a run judged by the field's protocols; ``scorecard.json``.

Per (method, layer), on the same items (:mod:`.collect`), each figure beside the seeded random
map's through the same pipeline:

* ``localization`` - CheXlocalize's hit rate and mIoU (Otsu; val-tuned thresholds and probability
  cutoffs), Arun et al.'s AUPRC, ChestX-ray8's IoBB accuracy, Quantus's relevance mass / rank, with
  patient-bootstrap CIs (:func:`chestxai.scorecard.localisation.localisation_block`); null with a
  reason when the data has no ground truth;
* ``image_agreement`` - Arun et al.'s baseline, SSIM of random pairs of maps of *different* images
  (:func:`chestxai.explain.map_agreement.random_pairs_baseline`), and the sentence when the maps
  are image-independent;
* ``randomization`` - cascading and independent weight randomisation against that baseline
  (:func:`chestxai.scorecard.trust.randomisation_block`);
* ``repeatability`` / ``reproducibility`` - the maps of the same items from ``--seeds`` /
  ``--architectures`` runs against the same baseline (:func:`chestxai.scorecard.trust.agreement_block`),
  with the ``spread`` of each localisation figure across the runs;
* ``verdict`` (:func:`chestxai.scorecard.verdict.verdict`), and the top-level ``recommended`` pipeline.

The JSON layout is documented in docs/SCORECARD.md ("scorecard.json"); scripts read it, so a key
is added, never renamed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from chestxai.atomic import write_text
from chestxai.environment import package_versions
from chestxai.errors import UserError
from chestxai.explain.map_agreement import image_independence, random_pairs_baseline
from chestxai.explain.methods import CONTROL, METHODS, UnsupportedMethodError, get_method
from chestxai.explain.run import open_explained
from chestxai.rundir import RunDir, ScorecardDir
from chestxai.rundir.guard import check_overwrite
from chestxai.rundir.jsonfile import read_json, to_jsonable
from chestxai.scorecard.collect import (
    ItemSet,
    default_layers,
    ground_truth,
    human_masks,
    map_set,
    probabilities,
    sanity_inputs,
    short_layer,
    split_items,
)
from chestxai.scorecard.maps import MapSet
from chestxai.scorecard.settings import ScorecardSettings
from chestxai.train.memory import peak_memory_mb, reset_peak_memory

_CPU = torch.device("cpu")  # peak_rss_mb is the process's resident set, whatever device draws the maps

log = logging.getLogger(__name__)

#: the first key of every scorecard.json: how the command recognises a file it wrote (and may replace)
GENERATOR = "chestxai scorecard"
#: bumped when a key changes meaning (keys are only ever added)
FORMAT_VERSION = 1

PROTOCOLS = {
    "hit_rate": "CheXlocalize (Saporta et al. 2022) hit rate = Zhang et al.'s pointing game: the map's "
    "maximum inside the ground truth (tolerance in px), positives only",
    "miou_otsu": "CheXlocalize mIoU: map resized to the image, binarised by Otsu, IoU per image x finding "
    "(positives and known negatives)",
    "miou_tuned": "CheXlocalize mIoU at per-finding thresholds and probability cutoffs tuned on the val split",
    "auprc": "Arun et al. 2021 localisation utility: average precision of the map's pixels against the mask",
    "iobb_accuracy": "ChestX-ray8 (Wang et al. 2017, Table 4): share of positives whose box from the map "
    "reaches T(IoBB) against a ground-truth box",
    "relevance_mass": "Arras et al. 2022 / Quantus relevance mass accuracy: share of the map's mass in the mask",
    "relevance_rank": "Arras et al. 2022 / Quantus relevance rank accuracy: share of the top-|mask| pixels "
    "inside the mask",
    "image_agreement": "Arun et al. 2021 baseline: mean SSIM of 50 random pairs of the trained model's maps "
    "of different images",
    "randomization": "Adebayo et al. 2018 cascading (head down) and independent weight randomisation, judged "
    "as Arun et al. 2021 against the random-pairs baseline",
    "repeatability": "Arun et al. 2021: SSIM of the maps of the same images from the same recipe retrained "
    "with other seeds, against the baseline",
    "reproducibility": "Arun et al. 2021: SSIM of the maps of the same images from other architectures "
    "trained on the same data, against the baseline",
    "bootstrap": "95% percentile CIs from patient-bootstrap replicates (images where there are no patient ids)",
    "control": "the seeded random map at the same layer, through the same pipeline (thresholds tuned on its "
    "own val maps)",
}
TOGETHER = "agreement with ground truth measures the model and the method together"


def _is_scorecard(path: Path) -> bool:
    try:
        return read_json(path).get("generator") == GENERATOR
    except (ValueError, OSError, AttributeError):
        return False


def output_dir(settings: ScorecardSettings) -> ScorecardDir:
    return ScorecardDir(Path(settings.out)) if settings.out else RunDir(Path(settings.run)).scorecard


class _Runs:
    """The reference run and the runs it is compared with, opened once each."""

    def __init__(self, settings: ScorecardSettings):
        self.reference = open_explained(settings.run, settings.device)
        self.seeds = [open_explained(r, settings.device) for r in settings.seeds]
        self.architectures = [open_explained(r, settings.device) for r in settings.architectures]


def _layer_for(trained, layer: str) -> str | None:
    """``layer`` in another run's model, when it has one of that name (None: it has not)."""
    from chestxai.explain.layers import LayerNotFoundError, resolve_layer

    try:
        resolve_layer(trained.model, layer)
    except LayerNotFoundError:
        return None
    return layer


def _other_maps(others, items: ItemSet, method: str, layer: str, settings: ScorecardSettings, kind: str):
    """Each other run's maps of ``method`` at ``layer`` on the reference items, with its random
    control (for the spread of its localisation); runs without the layer are listed, not scored."""
    sets, controls, missing = [], [], []
    for other in others:
        at = _layer_for(other, layer)
        if at is None:
            missing.append({"run": str(other.run.root), "reason": f"its model has no layer {layer!r}"})
            continue
        kw = dict(seed=settings.seed, align=settings.align, batch_size=settings.batch_size)
        probs = probabilities(other, items.items, settings.batch_size)
        sets.append(map_set(other, items, method, at, probs=probs, **kw))
        controls.append(map_set(other, items, CONTROL, at, probs=probs, **kw))
    if missing:
        log.info("%s at %s: %d runs left out: %s", kind, layer, len(missing), missing)
    return sets, controls, missing


def _entry(
    runs: _Runs,
    test: ItemSet,
    val: ItemSet | None,
    maps: MapSet,
    control: MapSet,
    val_maps: MapSet | None,
    control_val: MapSet | None,
    settings: ScorecardSettings,
    human: dict | None = None,
) -> dict[str, Any]:
    from chestxai.scorecard.localisation import localisation_block
    from chestxai.scorecard.trust import agreement_block, randomisation_block, spread
    from chestxai.scorecard.verdict import verdict

    method, layer = maps.method, maps.layer
    loc_kw = dict(n_boot=settings.n_boot, seed=settings.seed, tolerance=settings.tolerance)
    entry: dict[str, Any] = {"method": method, "layer": layer}
    if test.has_truth:
        entry["localization"] = localisation_block(
            maps, control, val_maps, control_val, human=human, **loc_kw
        )
    else:
        entry["localization"] = None
        entry["localization_note"] = (
            f"no ground truth in split {test.split} (no boxes or masks in the cache or given): "
            "localisation not measured; randomisation and repeatability need none"
        )
    distinct = test.first_per_image()
    baseline = random_pairs_baseline(maps.maps[distinct], seed=settings.seed)
    baseline["image_independent"] = image_independence(baseline, f"{method} at {layer}")
    entry["image_agreement"] = baseline
    x, indices = sanity_inputs(runs.reference, test, settings.sanity_limit)
    entry["randomization"] = randomisation_block(
        runs.reference.model, x, indices, method, layer, baseline=baseline, seed=settings.seed,
        batch_size=settings.batch_size, progress=settings.progress,
    )  # fmt: skip
    for kind, others in (("repeatability", runs.seeds), ("reproducibility", runs.architectures)):
        if not others:
            continue
        sets, controls, missing = _other_maps(others, test, method, layer, settings, kind)
        if not sets:
            entry[kind] = {"pass": None, "not_measured": missing}
            continue
        block = agreement_block(maps, sets, baseline, kind)
        if missing:
            block["left_out"] = missing
        if test.has_truth:
            blocks = {maps.run: entry["localization"]}
            for s, c in zip(sets, controls, strict=True):
                blocks[_unique(blocks, s.run)] = localisation_block(s, c, **loc_kw)
            block["spread"] = spread(blocks)
        entry[kind] = block
    entry["verdict"] = verdict(entry, f"{method} at {layer}")
    if settings.chexlocalize:
        entry["chexlocalize"] = _export_chexlocalize(maps, output_dir(settings).chexlocalize(method, layer))
    return entry


def _export_chexlocalize(maps: MapSet, folder) -> dict[str, Any]:
    """``--chexlocalize``: the test maps as CheXlocalize's heatmap pickles and our Otsu masks (its own
    binarisation, :func:`~chestxai.metrics.saliency_localization.otsu_mask`) as its segmentation JSON."""
    from chestxai.metrics.saliency_localization import otsu_mask
    from chestxai.scorecard.chexlocalize_export import export_mapset

    masks = {i: otsu_mask(maps.full_map(i)) for i in range(len(maps))}
    return export_mapset(maps, folder, masks)


def _unique(taken: dict, name: str) -> str:
    """``name``, or ``name#2``... when two runs share a folder name (``--seeds a/run b/run``)."""
    out, k = name, 2
    while out in taken:
        out, k = f"{name}#{k}", k + 1
    return out


def build_scorecard(settings: ScorecardSettings, force: bool = False) -> dict[str, Any]:
    """Score every method x layer of ``settings.run``; write ``scorecard.json`` (and return it).

    Inputs are checked before any map is drawn (methods, layers, the output file); a method that
    does not apply at a layer (CAM off the final layer) is listed ``not_applicable`` there."""
    from chestxai.scorecard.verdict import recommend

    start = time.perf_counter()
    reset_peak_memory(_CPU)  # the scorecard's own peak, not that of training run before it (bench)
    for name in settings.method_names:
        get_method(name)  # an unknown name fails before any work
    out = output_dir(settings)
    check_overwrite(out.json, force, _is_scorecard, "scorecard")
    runs = _Runs(settings)
    trained = runs.reference
    layers = list(settings.layers) or default_layers(trained)
    for layer in layers:
        if _layer_for(trained, layer) is None:
            _unknown_layer(trained, layer)
    cache = trained.inputs().cache
    truth = ground_truth(cache, settings.boxes, settings.masks, settings.gt_json, trained.label_names)
    test = split_items(trained, settings.split, truth, settings.limit, settings.batch_size)
    if settings.human_json and not test.has_truth:
        raise UserError(
            f"--human {settings.human_json}: the human benchmark needs ground truth to compare with"
        )
    human = (
        human_masks(settings.human_json, cache, test, trained.label_names) if settings.human_json else None
    )
    val = (
        split_items(trained, settings.val_split, truth, settings.limit, settings.batch_size, required=False)
        if test.has_truth
        else None
    )
    val = val if val is not None and val.has_truth else None
    kw = dict(seed=settings.seed, align=settings.align, batch_size=settings.batch_size)
    probs = probabilities(trained, test.items, settings.batch_size)
    val_probs = probabilities(trained, val.items, settings.batch_size) if val else None
    methods: dict[str, dict[str, Any]] = {}
    control_summary: dict[str, Any] = {}
    for layer in layers:
        control = map_set(trained, test, CONTROL, layer, probs=probs, **kw)
        control_val = map_set(trained, val, CONTROL, layer, probs=val_probs, **kw) if val else None
        control_summary[layer] = {
            "image_agreement": random_pairs_baseline(control.maps[test.first_per_image()], seed=settings.seed)
        }
        for method in settings.method_names:
            log.info("scorecard: %s at %s", method, layer)
            try:
                maps = map_set(trained, test, method, layer, probs=probs, progress=settings.progress, **kw)
            except UnsupportedMethodError as exc:
                methods.setdefault(method, {})[layer] = {"not_applicable": str(exc)}
                continue
            val_maps = map_set(trained, val, method, layer, probs=val_probs, **kw) if val else None
            methods.setdefault(method, {})[layer] = _entry(
                runs, test, val, maps, control, val_maps, control_val, settings, human
            )
    scored = {m: {k: e for k, e in by.items() if "verdict" in e} for m, by in methods.items()}
    card: dict[str, Any] = {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "run": str(trained.run.root),
        "model": trained.model_name,
        "split": settings.split,
        "val_split": settings.val_split if val else None,
        "ground_truth": truth.source if test.has_truth else None,
        "human": settings.human_json,
        "items": test.counts(),
        "val_items": val.counts() if val else None,
        "skipped": test.skipped[:50],
        "seeds": [str(r.run.root) for r in runs.seeds],
        "architectures": [str(r.run.root) for r in runs.architectures],
        "layers": layers,
        "methods": methods,
        "control": {"method": CONTROL, "summary": METHODS.get(CONTROL).summary, "per_layer": control_summary},
        "recommended": recommend({m: by for m, by in scored.items() if by}, model=trained.model_name),
        "together": TOGETHER,
        "protocols": PROTOCOLS,
        "settings": settings.as_dict(),
        "versions": package_versions(),
    }
    anchors = _chestxray8(trained, truth, test, card)
    if anchors:
        card["chestxray8"] = anchors
    card["seconds"] = round(time.perf_counter() - start, 1)
    card["peak_rss_mb"] = round(peak_memory_mb(_CPU), 1)
    out.root.mkdir(parents=True, exist_ok=True)
    import json

    write_text(out.json, json.dumps(to_jsonable(card), indent=2, allow_nan=False) + "\n")
    return card


def _unknown_layer(trained, layer: str) -> None:
    known = ", ".join(default_layers(trained))
    raise UserError(
        f"--layers {layer}: the model {trained.model_name} has no such layer; its stages are {known}"
    )


def _chestxray8(trained, truth, test: ItemSet, card: dict) -> dict | None:
    """ChestX-ray8 Table 4's layout per finding for the recommended pipeline (else the first scored
    one), when the ground truth is boxes of NIH data: published figures beside ours."""
    if not test.has_truth or "boxes" not in truth.source or trained.inputs().cache.source != "nih":
        return None
    from chestxai.scorecard.anchors import chestxray8_table

    pairs = [(m, lay) for m, by in card["methods"].items() for lay, e in by.items() if e.get("localization")]
    if not pairs:
        return None
    pipeline = (card.get("recommended") or {}).get("pipeline") or {}
    pick = (pipeline.get("method"), pipeline.get("layer"))
    method, layer = pick if pick in pairs else pairs[0]
    loc = card["methods"][method][layer]["localization"]
    return {"method": method, "layer": short_layer(layer), "table": chestxray8_table(loc["per_finding"])}

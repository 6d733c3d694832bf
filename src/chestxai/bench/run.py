"""``run_bench``: build the lesion task, train on it, explain at several layers, write ``bench.json``.

Order, and why: every input is checked first (methods, layers on an untrained copy of the model,
the output folder, the task settings) so a typo fails in a second, not after ten minutes of
training. Then backgrounds -> task cache (:mod:`.task`) -> ``chestxai.train.loop.train`` with a
:class:`~chestxai.config.RunConfig` built here (a normal run directory, ``DIR/run``) -> items of
the test split with the lesion masks as ground truth (the ``explain`` stage's own selection) ->
every (method, layer) and the random control (:mod:`.measure`). A shortcut task also scores the
model on the same test images without the cue and reports the AUC drop and the heatmap energy on
the cue vs on the lesion.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chestxai.atomic import write_text
from chestxai.bench.measure import (
    best_layers,
    cue_shares,
    faithfulness_at,
    layer_grid,
    measure_layers,
    pointing_game_unaligned,
)
from chestxai.bench.scorecard import check_same_recipe, check_scorecard, extra_runs, summarise
from chestxai.bench.settings import DEFAULT_METHODS, BenchConfig  # noqa: F401  (re-exported)
from chestxai.bench.task import CUE, FINDING, build_task, read_backgrounds, write_task
from chestxai.rundir import BenchDir
from chestxai.rundir.guard import check_output_dir

log = logging.getLogger(__name__)

#: methods run by default: every registered one that works at any layer and costs one batched
#: forward/backward (ScoreCAM, one forward per channel, and PCAM, which needs a PCAM head, on request)
RESNET_LAYERS = ("layer2", "layer3", "layer4")
ALIGNMENT_NOTE = (
    "heatmaps are moved by alignment_shift_px (rows, cols), measured on this trained model per layer "
    "(chestxai.explain.alignment: gradient centroid, rounded to 0.5 px), before the pointing game; "
    "pointing_game_unaligned is the same method, layer and lesions with pytorch-grad-cam's placement "
    "(explain --no-align). The pointing game depends on the shift: compare both."
)


def default_layers(model: str) -> tuple[str, ...]:
    return RESNET_LAYERS if model.startswith("resnet") else ()


def check_inputs(cfg: BenchConfig) -> list[str]:
    """Every check that needs no data, before any work; returns the layers to measure."""
    from chestxai.config import TrainConfig
    from chestxai.explain.layers import resolve_layer, trace_layers
    from chestxai.explain.methods import get_method
    from chestxai.models import create_model

    for name in cfg.methods:
        get_method(name)  # unknown -> KeyError listing the methods
    TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device, seed=cfg.seed)
    if cfg.epochs < 1:  # train.epochs 0 scores an untrained model: nothing here to localize
        raise ValueError(f"--epochs must be >= 1 (the benchmark trains its model), got {cfg.epochs}")
    check_output_dir(cfg.out, cfg.force)
    probe = create_model(cfg.model, num_labels=1, task="binary", input_size=cfg.size)
    layers = list(cfg.layers) or list(default_layers(cfg.model)) or [trace_layers(probe).default]
    for layer in layers:
        resolve_layer(probe, layer)  # unknown -> error listing the spatial layers
    check_scorecard(cfg, layers)
    return layers


def _train(
    cfg: BenchConfig,
    bench: BenchDir,
    cache: Path,
    run_dir: Path | None = None,
    *,
    model: str | None = None,
    seed: int | None = None,
    resume: bool = False,
) -> tuple[Path, float]:
    """Train ``model`` (default ``cfg.model``) with training seed ``seed`` (default ``cfg.seed``) on the
    task cache; ``resume`` continues an interrupted run and reuses a finished one (the scorecard's
    extra runs: a rerun of ``--scorecard`` does not train them again)."""
    from chestxai.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from chestxai.train.loop import train

    run_dir = run_dir or bench.run.root
    seed = cfg.seed if seed is None else seed
    config = RunConfig(
        name="bench",
        run_dir=str(run_dir),
        data=DataConfig(source=f"bench-{cfg.source}", cache_dir=str(cache), size=cfg.size),
        model=ModelConfig(name=model or cfg.model),
        train=TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device,
                          seed=seed, threads=cfg.threads, warmup_epochs=0.0, augment=cfg.augment, amp=cfg.amp),
    )  # fmt: skip
    if resume:
        check_same_recipe(config)
    started = time.perf_counter()
    train(config, resume=resume, progress=cfg.progress)
    return run_dir, time.perf_counter() - started


def _auc(model, images: np.ndarray, labels: np.ndarray, preprocess: dict) -> float:
    from sklearn.metrics import roc_auc_score

    from chestxai.models.predict import predict_probs

    device = next(model.parameters()).device
    probs = predict_probs(model, images, preprocess, device=device)[:, 0]
    return float(roc_auc_score(labels, probs))


def _cue_masks(cache) -> dict[str, np.ndarray]:
    idx = cache.mask_index
    return {
        str(r.image_id): np.asarray(cache.masks[i]) for i, r in enumerate(idx.itertuples()) if r.label == CUE
    }


def _clean_items(clean_cache) -> list:
    """Items of the cue-free test images: each lesion image with its mask (for the shortcut section)."""
    from chestxai.explain.items import Item

    idx = clean_cache.mask_index
    ids = clean_cache.frame["image_id"].astype(str).to_numpy()
    return [
        Item(str(r.image_id), np.asarray(clean_cache.images[int(r.row)]), FINDING, 0,
             gt_mask=np.asarray(clean_cache.masks[i]).astype(bool))
        for i, r in enumerate(idx.itertuples()) if r.label == FINDING and ids[int(r.row)] == r.image_id
    ]  # fmt: skip


def _sanity(model, items, best: dict, preprocess: dict, n: int, seed: int) -> dict[str, dict]:
    """Cascading randomisation similarity (final step) of each method at its best layer."""
    from chestxai.explain.measure import model_inputs
    from chestxai.explain.sanity import randomisation_similarity

    if not n:
        return {}
    device = next(model.parameters()).device
    x = model_inputs([it.image for it in items[:n]], preprocess, device)
    out = {}
    for method, row in best.items():
        try:
            res = randomisation_similarity(model, x, method, row["module"], modes=("cascading",), seed=seed)
        except ValueError as exc:
            out[method] = {"error": str(exc)}
            continue
        final = res.get("final") or {}
        out[method] = {"spearman": final.get("spearman"), "ssim": final.get("ssim"),
                       "passed": res.get("passed"), "n_images": res.get("n_images")}  # fmt: skip
    return out


def _label_sanity(
    cfg: BenchConfig, bench: BenchDir, task, model, items, best: dict, preprocess: dict
) -> dict:
    """Label randomisation (Adebayo et al. 2018, the data randomisation test): train the same network
    on the same images with the labels permuted (so nothing links lesion and label), then compare
    each method's maps at its best layer with the trained model's on the first ``label_sanity``
    test lesions. A method whose maps stay alike (mean |Spearman| >= the model-randomisation
    threshold) explains the image, not what the labels taught."""
    from chestxai.explain.explainer import Explainer
    from chestxai.explain.map_agreement import map_similarity, summarise_similarity
    from chestxai.explain.measure import model_inputs
    from chestxai.explain.run import open_explained
    from chestxai.explain.sanity import SANITY_THRESHOLD
    from chestxai.rundir.tables import read_history

    rng = np.random.default_rng(cfg.seed + 7919)
    permuted = replace(task, labels=rng.permutation(task.labels))
    cache_dir = write_task(permuted, bench.permuted_task, f"bench-{cfg.source}", progress=cfg.progress)
    run_dir, seconds = _train(cfg, bench, cache_dir, bench.permuted_run.root)
    permuted_run = open_explained(run_dir, cfg.device)
    run, other = permuted_run.run, permuted_run.model
    history = read_history(run)
    device = next(model.parameters()).device
    x = model_inputs([it.image for it in items[: cfg.label_sanity]], preprocess, device)
    out: dict[str, Any] = {
        "n_images": int(len(x)),
        "train_seconds": seconds,
        "permuted_val_auc": float(history["val_auc"].max()) if history is not None else None,
        "threshold": SANITY_THRESHOLD,
        "metric": "mean |Spearman| (and SSIM) of the permuted-label model's maps to the trained model's",
        "methods": {},
    }
    for method, row in best.items():
        maps = [Explainer(net, method, layer=row["module"], seed=cfg.seed).explain(x, [0] * len(x))
                for net in (model, other)]  # fmt: skip
        summary = summarise_similarity(map_similarity(maps[0], maps[1]))
        mean = summary["spearman"]
        passed = None if mean is None else bool(mean < SANITY_THRESHOLD)
        out["methods"][method] = {"layer": row["layer"]} | summary | {"passed": passed}
    return out


def run_bench(cfg: BenchConfig) -> dict:
    """The whole benchmark (module doc); returns what it wrote to ``DIR/bench.json``."""
    from chestxai.data.cache import PreparedCache
    from chestxai.explain.run import open_explained, select_items
    from chestxai.explain.settings import ExplainSettings
    from chestxai.rundir.tables import read_history

    started = time.perf_counter()
    layers = check_inputs(cfg)
    bench = BenchDir(Path(cfg.out))
    bg, ids = read_backgrounds(cfg.source, cfg.root, cfg.size, options=cfg.options, limit=cfg.backgrounds,
                               cache=cfg.cache or None, seed=cfg.seed, progress=cfg.progress)  # fmt: skip
    bench.root.mkdir(parents=True, exist_ok=True)
    task = build_task(bg, ids, cfg.task, progress=cfg.progress)
    source = f"bench-{cfg.source}"
    cache_dir = write_task(task, bench.task, source, progress=cfg.progress)
    test_rows = np.flatnonzero(task.frame["split"].to_numpy() == "test")
    clean_dir = (
        write_task(task, bench.clean_task, source, clean=True, rows=test_rows, progress=cfg.progress)
        if cfg.task.shortcut
        else None
    )
    build_s = time.perf_counter() - started

    run_dir, train_s = _train(cfg, bench, cache_dir)
    trained = open_explained(run_dir, cfg.device)
    run, model, preprocess = trained.run, trained.model, trained.preprocess
    cache = PreparedCache(cache_dir)
    history = read_history(run)
    best_epoch = history[history["best"] == 1].iloc[-1] if history is not None else None
    val_auc = float(best_epoch["val_auc"]) if best_epoch is not None else None
    test_auc = _auc(model, cache.images[test_rows], cache.labels[test_rows, 0], preprocess)

    settings = ExplainSettings(tolerance=float(cfg.tolerance), overlays=False,
                               faithfulness_limit=cfg.faithfulness, seed=cfg.seed)  # fmt: skip
    sel = select_items(trained, None, "test", limit=cfg.explain_limit or None)
    items = [it for it in sel.items if it.finding == FINDING]
    methods = [m for m in cfg.methods if m != "random"]
    explain_started = time.perf_counter()
    rows, results, not_applicable = measure_layers(model, items, methods, layers, preprocess, settings)
    grids = {layer: layer_grid(model, layer, cfg.size) for layer in layers}
    for row in rows:
        row["grid"] = grids[row["layer"]]
    best = best_layers(rows)
    control_best = best.pop("random", None)
    for method, row in best.items():
        row["faithfulness"] = faithfulness_at(model, items, method, row["module"], preprocess, settings)
        row["pointing_game_unaligned"] = pointing_game_unaligned(
            model, items, method, row["module"], preprocess, settings
        )
    if control_best is not None:
        control_best["faithfulness"] = faithfulness_at(
            model, items, "random", control_best["module"], preprocess, settings
        )
    sanity = _sanity(model, items, best, preprocess, cfg.sanity, cfg.seed)
    explain_s = time.perf_counter() - explain_started
    label_sanity = (
        _label_sanity(cfg, bench, task, model, items, best, preprocess) if cfg.label_sanity and best else None
    )

    ranking = sorted(best.values(), key=lambda r: -(r["pointing_game"] or 0))
    top = ranking[0] if ranking else None
    random_pg = control_best["pointing_game"] if control_best else None
    out: dict[str, Any] = {
        "source": cfg.source,
        "root": str(cfg.root),
        "n_backgrounds": len(bg),
        "n_images": len(task.images),
        "n_explained": len(items),
        "model": cfg.model,
        "epochs": cfg.epochs,
        "augment": cfg.augment,
        "amp": cfg.amp,
        "val_auc": val_auc,
        "test_auc": test_auc,
        "pointing_tolerance_px": float(cfg.tolerance),
        "alignment": ALIGNMENT_NOTE,
        "lesion": cfg.task.as_dict(),
        "methods": {
            m: _public(r)
            | {"sanity": sanity.get(m), "label_sanity": (label_sanity or {}).get("methods", {}).get(m)}
            for m, r in best.items()
        },
        "label_sanity": label_sanity,
        "random": _public(control_best) if control_best else None,
        "per_layer": [_public(r) for r in rows],
        "not_applicable": not_applicable,
        "best": {
            "method": top["method"],
            "layer": top["layer"],
            "pointing_game": top["pointing_game"],
            "alignment_shift_px": top["alignment_shift_px"],
            "pointing_game_unaligned": top["pointing_game_unaligned"],
            "vs_random": (top["pointing_game"] / random_pg) if top and random_pg else None,
        }
        if top
        else None,  # fmt: skip
        "seconds": {
            "build": build_s,
            "train": train_s,
            "explain": explain_s,
            "total": time.perf_counter() - started,
        },  # fmt: skip
        "run_dir": str(run_dir),
        "task_cache": str(cache_dir),
    }
    if clean_dir is not None:
        out["shortcut"] = _shortcut(cfg.task.shortcut, model, preprocess, cache, PreparedCache(clean_dir),
                                    items, results, best, control_best, settings, test_auc)  # fmt: skip
    _examples(bench, items, results, top, layers)
    write_text(bench.bench_json, json.dumps(out, indent=1, default=_jsonable))
    if cfg.scorecard:  # bench.json first: the benchmark's figures survive a failure in the scorecard
        applicable = [m for m in methods if all((m, layer) in results for layer in layers)]
        out["scorecard"] = _scorecard(cfg, bench, cache_dir, layers, applicable)
        out["seconds"]["total"] = time.perf_counter() - started
        write_text(bench.bench_json, json.dumps(out, indent=1, default=_jsonable))
    return out


def _scorecard(
    cfg: BenchConfig, bench: BenchDir, cache_dir: Path, layers: Sequence[str], methods: list[str]
) -> dict:
    """Train the extra runs on the task cache (resumed / reused when there), then the scorecard of the
    benchmark run with them (:mod:`.scorecard`); methods = those that work at every measured layer."""
    from chestxai.bench.scorecard import scorecard_settings
    from chestxai.scorecard.run import build_scorecard

    runs = extra_runs(cfg, bench)
    train_s = 0.0
    for r in runs:
        log.info("scorecard: training %s (seed %d) in %s", r["model"], r["seed"], r["run_dir"])
        r["run_dir"], seconds = _train(cfg, bench, cache_dir, r["run_dir"], model=r["model"], seed=r["seed"],
                                       resume=True)  # fmt: skip
        r["train_seconds"] = seconds
        train_s += seconds
    started = time.perf_counter()
    card = build_scorecard(scorecard_settings(cfg, bench, layers, methods), force=cfg.force)
    return summarise(card, bench, runs, train_s, time.perf_counter() - started)


def _shortcut(cue, model, preprocess, cache, clean, items, results, best, control, settings, auc_cue):
    """AUC with and without the cue; per method at its best layer, heatmap energy on the cue vs the
    lesion (cue test images) and the pointing game on the cue-free copies."""
    from chestxai.explain.measure import measure_method

    auc_clean = _auc(model, clean.images, clean.labels[:, 0], preprocess)
    cues = _cue_masks(cache)
    clean_items = _clean_items(clean)
    quick = replace(settings, faithfulness_limit=0)
    per_method = {}
    for method, row in [*best.items(), *([("random", control)] if control else [])]:
        shares = cue_shares(results[(method, row["layer"])], items, cues)
        clean_res = measure_method(model, clean_items, method, preprocess, quick, row["module"])
        loc = (clean_res.localization() or {}).get("overall") or {}
        per_method[method] = shares | {"layer": row["layer"],
                                       "clean_pointing_game": loc.get("pointing_game")}  # fmt: skip
    return {
        "cue": cue,
        "cue_in_class": FINDING,
        "test_auc_with_cue": auc_cue,
        "test_auc_without_cue": auc_clean,
        "auc_drop": auc_cue - auc_clean,
        "methods": per_method,
    }


def _examples(bench: BenchDir, items, results, top: dict | None, layers: Sequence[str], n: int = 6) -> None:
    """Heatmaps of the best method at every layer for the first ``n`` items (the report shows them)."""
    if top is None or not items:
        return
    bench.figures.mkdir(parents=True, exist_ok=True)
    k = min(n, len(items))
    maps = {
        layer: results[(top["method"], layer)].heatmaps[:k]
        for layer in layers
        if (top["method"], layer) in results
    }
    np.savez_compressed(
        bench.examples,
        images=np.stack([it.image for it in items[:k]]),
        masks=np.stack([it.gt_mask for it in items[:k]]).astype(np.uint8),
        layers=np.array(list(maps)),
        heatmaps=np.stack(list(maps.values())),
        method=np.array(top["method"]),
    )


def _public(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {k: v for k, v in row.items() if k != "images_per_s"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)

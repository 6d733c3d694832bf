"""``bench lesions --scorecard``: the trust scorecard from any folder of X-rays with known ground truth.

The scorecard (``chestxai scorecard``, :mod:`chestxai.scorecard.run`) judges a run's maps by the
field's protocols; two of them need more runs than the benchmark trains: *repeatability* (Arun et
al. 2021: the same recipe retrained with other seeds) and *reproducibility* (other architectures
on the same data). Here they are trained on the benchmark's own task cache - the same images,
splits and lesion masks - so the lesion masks are the ground truth of every run, and only the
training seed (initial weights, batch order) or the architecture differs:

* ``DIR/run-seed<N>/``: ``--model`` with training seed ``N`` (``seed + 1`` ... ``seed + k`` for
  ``--scorecard-seeds k``), the benchmark's recipe otherwise (epochs, batch size, lr, precision);
* ``DIR/run-<arch>/``: ``--scorecard-architecture`` with the benchmark's seed and recipe;
* ``DIR/scorecard/``: the scorecard of ``DIR/run`` with those as ``--seeds`` / ``--architectures``.

The extra runs are ordinary run directories trained with ``resume``: an interrupted one continues,
a finished one is reused. What can be checked without data is checked before the benchmark trains
anything (:func:`check_scorecard`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chestxai.bench.settings import BenchConfig
from chestxai.errors import UserError
from chestxai.registry import UnknownNameError
from chestxai.rundir import BenchDir

log = logging.getLogger(__name__)


def check_scorecard(cfg: BenchConfig, layers: Sequence[str]) -> None:
    """Before any work: the extra runs' training settings, the architecture and that every layer the
    benchmark measures exists in it (the scorecard compares maps of the same layer across runs), and
    the scorecard's own settings."""
    if not cfg.scorecard:
        return
    from chestxai.config import TrainConfig
    from chestxai.explain.layers import LayerNotFoundError, resolve_layer
    from chestxai.models import create_model

    for seed in cfg.scorecard_run_seeds:
        if seed >= 2**32:
            raise UserError(
                f"--seed {cfg.seed} + --scorecard-seeds {cfg.scorecard_seeds} passes 2**32; use a smaller --seed"
            )
        TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device, seed=seed)
    arch = cfg.scorecard_architecture
    if arch:
        try:
            probe = create_model(arch, num_labels=1, task="binary", input_size=cfg.size)
        except UnknownNameError as exc:  # the registry's message lists the architectures
            raise UserError(f"--scorecard-architecture: {exc}") from None
        for layer in layers:
            try:
                resolve_layer(probe, layer)
            except LayerNotFoundError:
                raise UserError(
                    f"--scorecard-architecture {arch} has no layer {layer!r}: reproducibility compares the "
                    f"maps of one layer across architectures; pick one with the same stages as {cfg.model} "
                    f"(e.g. resnet34) or pass --layers that both have"
                ) from None
    scorecard_settings(cfg, BenchDir(Path(cfg.out)), layers, cfg.methods)  # its own checks, now


def scorecard_settings(cfg: BenchConfig, bench: BenchDir, layers: Sequence[str], methods: Sequence[str]):
    """The ``chestxai scorecard`` settings of the benchmark run: the lesion masks in its task cache are
    the ground truth (the scorecard's default); the hit-rate tolerance and the randomisation images
    (``--sanity-limit``, at least 2) are the benchmark's; ``--scorecard-limit`` images per split."""
    from chestxai.scorecard.settings import ScorecardSettings

    return ScorecardSettings(
        run=str(bench.run.root),
        seeds=tuple(str(bench.seed_run(s).root) for s in cfg.scorecard_run_seeds),
        architectures=(str(bench.architecture_run(cfg.scorecard_architecture).root),)
        if cfg.scorecard_architecture
        else (),
        methods=tuple(m for m in methods if m != "random"),  # the scorecard adds its own random control
        layers=tuple(layers),
        limit=cfg.scorecard_limit or None,
        tolerance=float(cfg.tolerance or 0.0),
        sanity_limit=max(cfg.sanity, 2),  # the randomisation check on as many images as bench's own
        seed=cfg.seed,
        device=cfg.device,
        batch_size=cfg.batch_size,
        out=str(bench.scorecard.root),
        progress=cfg.progress,
    )


def extra_runs(cfg: BenchConfig, bench: BenchDir) -> list[dict[str, Any]]:
    """What :func:`chestxai.bench.run` trains for the scorecard: ``{role, model, seed, run_dir}`` each."""
    runs = [{"role": "seed", "model": cfg.model, "seed": s, "run_dir": bench.seed_run(s).root}
            for s in cfg.scorecard_run_seeds]  # fmt: skip
    if cfg.scorecard and cfg.scorecard_architecture:
        arch = cfg.scorecard_architecture
        runs.append(
            {
                "role": "architecture",
                "model": arch,
                "seed": cfg.seed,
                "run_dir": bench.architecture_run(arch).root,
            }
        )
    return runs


def best_hit_rate_by_layer(card: dict) -> dict[str, dict[str, Any]]:
    """``{layer: {method, hit_rate}}``: the best hit rate (CheXlocalize's, point estimate) at each layer,
    the figure by which the issue asks a ``layer2`` pipeline to rank above every ``layer4`` one."""
    best: dict[str, dict[str, Any]] = {}
    for method, by_layer in (card.get("methods") or {}).items():
        for layer, entry in (by_layer or {}).items():
            value = (((entry or {}).get("localization") or {}).get("hit_rate") or {}).get("value")
            if value is not None and (layer not in best or value > best[layer]["hit_rate"]):
                best[layer] = {"method": method, "hit_rate": float(value)}
    return best


def summarise(
    card: dict, bench: BenchDir, runs: list[dict[str, Any]], train_seconds: float, seconds: float
) -> dict:
    """The ``scorecard`` entry of ``bench.json``: where the scorecard is, the runs it compared, the
    recommended pipeline (the scorecard's own words) and the best hit rate per layer."""
    return {
        "dir": str(bench.scorecard.root),
        "json": str(bench.scorecard.json),
        "runs": [{k: str(v) if isinstance(v, Path) else v for k, v in r.items()} for r in runs],
        "recommended": card.get("recommended"),
        "best_hit_rate_by_layer": best_hit_rate_by_layer(card),
        "seconds": {"train": train_seconds, "scorecard": seconds},
    }


def recommended_line(recommended: Any) -> str:
    """One terminal line for the scorecard's ``recommended`` entry (a sentence, or method and layer)."""
    if not recommended:
        return "no pipeline recommended"
    if isinstance(recommended, str):
        return recommended
    if isinstance(recommended, dict):
        for key in ("line", "sentence", "text"):
            if recommended.get(key):
                return str(recommended[key])
        if recommended.get("method"):
            return f"{recommended['method']} at {recommended.get('layer', '?')}"
    return str(recommended)


#: what must match for an existing run to be continued or reused (``train`` itself does not compare)
RECIPE_KEYS = {"data": ("cache_dir", "size"), "model": ("name",),
               "train": ("epochs", "batch_size", "lr", "seed", "augment", "amp")}  # fmt: skip


def check_same_recipe(config) -> None:
    """Refuse to resume a run folder trained with another recipe (a rerun with other flags into the
    same ``--out``): ``train --resume`` would continue it as it is, under the new flags' name."""
    from chestxai.rundir import RunDir
    from chestxai.yamlsafe import load_yaml_file

    saved_path = RunDir(Path(config.run_dir)).config
    if not saved_path.exists():
        return
    saved, wanted = load_yaml_file(saved_path) or {}, config.to_dict()
    for section, keys in RECIPE_KEYS.items():
        for key in keys:
            old, new = (saved.get(section) or {}).get(key), wanted[section][key]
            if str(old) != str(new):
                raise UserError(
                    f"{saved_path.parent} was trained with {section}.{key} {old!r}, this run asks for {new!r}: "
                    "remove that folder or choose another --out"
                )

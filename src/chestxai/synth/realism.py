"""``chestxai synth evaluate``: is the translation realistic, and faithful? -> ``RUN/synth_metrics.json``.

For each direction (a2b, b2a) on ``split`` (default test, images training never saw), ``n`` source
images (seeded choice) are translated and cycled back, and ``n`` real images of the target domain
are drawn. Then, per direction:

``two_sample``         real target vs translated: held-out accuracy of a real-vs-synthetic CNN,
                       exact binomial CI, one-sided p vs 0.5 (:mod:`chestxai.synth.two_sample`)
``fid`` / ``kid``      with the named ``extractor`` (:mod:`chestxai.synth.features`); null without one
``label_consistency``  share of translations the ``--classifier`` puts in the target domain, beside
                       the real-target ceiling and the input floor (:mod:`chestxai.synth.consistency`)
``cycle_ssim``         SSIM(input, reconstruction): mean, std, n (:mod:`chestxai.synth.difference`)

plus a gallery (``RUN/gallery/NNN-<kind>.png``: input, translated, reconstructed, difference =
``|translated - input|``, gradcam = Grad-CAM(translated) - Grad-CAM(input) with a classifier).
What needs a classifier is ``null`` without one, with the reason under ``null_reasons``.
Computing and writing only: :mod:`chestxai.report.synth` renders the page.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from chestxai.rundir import SynthRunDir
from chestxai.rundir.guard import check_overwrite
from chestxai.rundir.jsonfile import read_json, write_json
from chestxai.synth.checkpoint import DIRECTIONS
from chestxai.synth.generate import direction_domains

log = logging.getLogger(__name__)
FORMAT = 1
WRITTEN_BY = "chestxai synth evaluate"
GALLERY_KINDS = ("input", "translated", "reconstructed", "difference", "gradcam")


def _ours(path: Path) -> bool:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("written_by") == WRITTEN_BY


def _sample(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.asarray(rows, np.int64)
    return np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False)) if len(rows) else rows


def _difference_label(domains: dict[str, str], target: str, source: str) -> str | None:
    """The label the two domains differ by (the target's, else the source's); None for two No Findings."""
    from chestxai.synth.domains import parse_domain

    for key in (target, source):
        spec = parse_domain(domains[key])
        if spec.label is not None:
            return spec.label
    return None


def _direction_data(synth, direction: str, split: str, n: int, seed: int, batch_size: int) -> dict[str, Any]:
    from chestxai.data.cache import PreparedCache

    source, target = direction_domains(synth.domains, direction)
    reverse = "b2a" if direction == "a2b" else "a2b"
    rng = np.random.default_rng([seed, DIRECTIONS.index(direction)])
    src_cache, tgt_cache = PreparedCache(synth.cache_for(source)), PreparedCache(synth.cache_for(target))
    src_rows = _sample(synth.rows(source, split), n, rng)
    tgt_rows = _sample(synth.rows(target, split), n, rng)
    if len(src_rows) < 4 or len(tgt_rows) < 4:
        raise ValueError(
            f"{split} split of the run has {len(synth.rows(source, split))} images of {synth.domains[source]} and "
            f"{len(synth.rows(target, split))} of {synth.domains[target]}; evaluate needs at least 4 of each "
            f"(choose --split, or a run with more images)"
        )
    inputs = np.asarray(src_cache.images[src_rows])
    fakes = synth.translate(inputs, direction, batch_size=batch_size)
    recon = synth.translate(fakes, reverse, batch_size=batch_size)
    return {
        "source": source,
        "target": target,
        "inputs": inputs,
        "fakes": fakes,
        "recon": recon,
        "real": np.asarray(tgt_cache.images[tgt_rows]),
        "source_ids": src_cache.frame["image_id"].iloc[src_rows].astype(str).tolist(),
    }


def _gallery(
    run: SynthRunDir, data: dict[str, dict], per_direction: int, judge, domains: dict[str, str]
) -> tuple[list[dict], dict | None]:
    """Write the gallery PNGs; returns the entries and the Grad-CAM settings (None without a classifier)."""
    from chestxai.synth.difference import gradcam_difference, pixel_difference, save_gray, save_map

    entries, cam_info, index = [], None, 0
    diffs = {
        d: pixel_difference(v["inputs"][:per_direction], v["fakes"][:per_direction]) for d, v in data.items()
    }
    vmax = max(0.05, max((float(x.max()) for x in diffs.values() if x.size), default=0.05))
    run.gallery.mkdir(parents=True, exist_ok=True)
    for direction, v in data.items():
        k = min(per_direction, len(v["inputs"]))
        cams = None
        label = _difference_label(domains, v["target"], v["source"])
        if judge is not None and label is not None and judge.index(label) is not None and k:
            cams = gradcam_difference(
                judge.model, judge.preprocess, judge.index(label), v["inputs"][:k], v["fakes"][:k]
            )
            cam_info = {"method": "gradcam", "layer": cams["layer"], "label": judge.label_names[judge.index(label)],
                        "scale": "per-image min-max maps (pytorch-grad-cam), difference in [-1, 1]"}  # fmt: skip
        for i in range(k):
            files = {}
            for kind, image in (
                ("input", v["inputs"][i]),
                ("translated", v["fakes"][i]),
                ("reconstructed", v["recon"][i]),
            ):
                files[kind] = save_gray(run.gallery_image(index, kind), image)
            files["difference"] = save_map(
                run.gallery_image(index, "difference"), diffs[direction][i], "magma", 0.0, vmax
            )
            if cams is not None:
                files["gradcam"] = save_map(
                    run.gallery_image(index, "gradcam"), cams["difference"][i], "RdBu_r", -1.0, 1.0,
                    shape=v["inputs"][i].shape,
                )  # fmt: skip
            entries.append({
                "index": index, "direction": direction, "source_image": v["source_ids"][i],
                "files": {kind: p.relative_to(run.root).as_posix() for kind, p in files.items()},
                "mean_abs_difference": float(diffs[direction][i].mean()),
            })  # fmt: skip
            index += 1
    for stale in run.gallery.glob("*.png"):  # images of an earlier, larger gallery: ours, by name
        if stale.name.split("-", 1)[0].isdigit() and int(stale.name.split("-", 1)[0]) >= index:
            stale.unlink()
    return entries, (cam_info | {"difference_vmax": vmax}) if cam_info else {"difference_vmax": vmax}


def evaluate_synth(
    run: str | Path,
    *,
    classifier: str | Path | None = None,
    extractor: str | None = None,
    n: int = 200,
    split: str = "test",
    directions: tuple[str, ...] = DIRECTIONS,
    seed: int = 0,
    gallery: int = 4,
    c2st_epochs: int = 15,
    batch_size: int = 16,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute every metric of the module docstring and write ``RUN/synth_metrics.json``; returns it."""
    from chestxai.locks import exclusive
    from chestxai.synth.checkpoint import load_synth
    from chestxai.synth.consistency import consistency, load_judge
    from chestxai.synth.difference import cycle_ssim, summarize
    from chestxai.synth.features import fid_kid, make_extractor
    from chestxai.synth.two_sample import two_sample_test

    t0 = time.perf_counter()
    rd = SynthRunDir(Path(run))
    rd.require()
    if n < 4:
        raise ValueError(f"--n must be at least 4 (images per set), got {n}")
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"--direction {d!r}: a CycleGAN run was trained for a2b and b2a only")
    check_overwrite(rd.metrics, force, _ours, "synthesis metrics")
    with exclusive(rd.root, "synthesis run"):
        synth = load_synth(rd.root, device=device)
        judge = load_judge(classifier, device) if classifier is not None else None
        ex, ex_reason = make_extractor(extractor, classifier, device)
        data = {}
        for d in directions:
            log.info("translating %s (%s split, n=%d)", d, split, n)
            data[d] = _direction_data(synth, d, split, n, seed, batch_size)
        out: dict[str, Any] = {
            "format": FORMAT,
            "written_by": WRITTEN_BY,
            "run": str(rd.root),
            "epoch": synth.epoch,
            "domains": dict(synth.domains),
            "size": synth.size,
            "split": split,
            "seed": seed,
            "n_requested": n,
            "directions": list(directions),
            "samples": {
                d: {
                    "n_source": len(v["inputs"]),
                    "n_real_target": len(v["real"]),
                    "source": synth.domains[v["source"]],
                    "target": synth.domains[v["target"]],
                }
                for d, v in data.items()
            },  # fmt: skip
            "two_sample": {},
            "cycle_ssim": {},
            "fid": None,
            "kid": None,
            "label_consistency": None,
            "extractor": ex.info if ex is not None else None,
            "classifier": judge.info() if judge is not None else None,
            "null_reasons": {},
        }
        fid, kid, lc = {}, {}, {}
        for d, v in tqdm(data.items(), desc="synth evaluate", disable=not progress, leave=False):
            out["two_sample"][d] = two_sample_test(
                v["real"], v["fakes"], seed=seed, epochs=c2st_epochs, device=device
            )
            half = len(v["real"]) // 2  # the same test on two halves of the real images: ~0.5 if honest
            if half >= 4:
                ref = two_sample_test(
                    v["real"][:half], v["real"][half : 2 * half], seed=seed, epochs=c2st_epochs, device=device
                )
                out["two_sample"][d]["real_vs_real"] = {
                    k: ref[k] for k in ("accuracy", "ci", "p_value", "n_test")
                }
            out["cycle_ssim"][d] = summarize(cycle_ssim(v["inputs"], v["recon"]))
            if ex is not None:
                r = fid_kid(ex, v["real"], v["fakes"], seed=seed)
                fid[d] = {"value": r["fid"], "n_real": r["n_real"], "n_fake": r["n_fake"]}
                kid[d] = r["kid"] | {"n_real": r["n_real"], "n_fake": r["n_fake"]}
            if judge is not None:
                try:
                    lc[d] = consistency(judge, synth.domains[v["target"]], v["fakes"], v["real"], v["inputs"])
                except ValueError as exc:
                    out["null_reasons"]["label_consistency"] = str(exc)
        if ex is not None:
            out["fid"], out["kid"] = fid, kid
        else:
            out["null_reasons"]["fid"] = out["null_reasons"]["kid"] = ex_reason
        if judge is None:
            out["null_reasons"]["label_consistency"] = (
                "no --classifier given: label consistency needs a classifier trained on real images"
            )
            out["null_reasons"]["gradcam"] = "no --classifier given: the Grad-CAM difference maps need one"
        elif lc:
            out["label_consistency"] = lc
        out["gallery"], out["gallery_settings"] = _gallery(rd, data, gallery, judge, synth.domains)
        if judge is not None and not any("gradcam" in e["files"] for e in out["gallery"]):
            out["null_reasons"]["gradcam"] = (
                "the classifier has no output for the label the domains differ by"
            )
        out["seconds"] = time.perf_counter() - t0
        out["torch"] = torch.__version__
        write_json(out, rd.metrics)
    return out

"""Scorecard fixtures: a tiny run with boxes, one without ground truth, and - until the protocol
modules (localisation, trust, verdict, anchors) are in the tree - stand-ins with their documented
signatures and keys, so the orchestration is tested on its own. With the real modules present the
stand-ins are not installed and the same tests run the real protocols."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch

from chestxai.evaluation.cost import torch_threads
from chestxai.testing import SPLIT_CYCLE, write_tiny_run


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def box_table(n: int, splits=("test", "val"), n_images: int = 6) -> pd.DataFrame:
    """A 10 x 8 px box of Pneumonia on the first ``n_images`` images of each split."""
    rows = []
    for split in splits:
        picked = [i for i in range(n) if SPLIT_CYCLE[i % len(SPLIT_CYCLE)] == split][:n_images]
        rows += [
            {"image_id": f"img{i:05d}", "label": "Pneumonia", "x": 4, "y": 6, "w": 10, "h": 8} for i in picked
        ]
    return pd.DataFrame(rows)


def _ci(v):
    return {"value": None if v is None else float(v), "ci_low": None if v is None else float(v),
            "ci_high": None if v is None else float(v)}  # fmt: skip


def _hit(ms):
    pos = ms.positives()
    hits = [bool(ms.truth[i].ravel()[np.argmax(ms.full_map(i))]) for i in pos]
    return float(np.mean(hits)) if hits else None


def _fake_modules() -> dict[str, types.ModuleType]:
    from chestxai.explain.map_agreement import map_ssim

    loc = types.ModuleType("chestxai.scorecard.localisation")

    def localisation_block(test, control, val=None, control_val=None, *, n_boot=1000, seed=0, tolerance=0.0,
                           iobb_thresholds=(0.1, 0.25, 0.5, 0.75, 0.9), human=None, progress=False):  # fmt: skip
        if not len(test.scored()):
            return None
        keys = ("hit_rate", "miou_otsu", "miou_tuned", "auprc", "relevance_mass", "relevance_rank")
        figs = {k: _ci(_hit(test) if k == "hit_rate" else 0.1) for k in keys}
        cfigs = {k: _ci(_hit(control) if k == "hit_rate" else 0.05) for k in keys}
        iobb = {str(t): _ci(0.5) for t in iobb_thresholds}
        return {"protocol": "stand-in", "n_items": len(test.scored()), "n_positive": len(test.positives()),
                "n_groups": len(set(test.groups)), "bootstrap": {"n_boot": n_boot, "unit": "patient", "level": 0.95},
                "tolerance_px": tolerance, **figs, "iobb_accuracy": iobb,
                "thresholds": None, "probability_cutoffs": None,
                "per_finding": {f: {**figs, "iobb_accuracy": iobb, "n_items": 1, "n_positive": 1}
                                for f in sorted(set(test.findings))},
                "control": {**cfigs, "iobb_accuracy": iobb, "method": "random"},
                "versus_control": {k: {"difference": _ci(0.0), "better": False} for k in keys}}  # fmt: skip

    loc.localisation_block = localisation_block
    trust = types.ModuleType("chestxai.scorecard.trust")

    def randomisation_block(model, inputs, indices, method, layer, *, baseline, options=None, seed=0,
                            batch_size=16, progress=False):  # fmt: skip
        return {"cascading": [], "independent": [], "baseline_ssim": baseline["ssim"], "final_ssim": 0.0,
                "final_spearman": 0.0, "pass": True, "rule": "stand-in", "spearman_rule_pass": True,
                "verdict": "stand-in", "n_images": len(inputs)}  # fmt: skip

    def agreement_block(reference, others, baseline, kind):
        per_run = {}
        for o in others:
            where = {(i, f): k for k, (i, f) in enumerate(zip(o.image_ids, o.findings, strict=True))}
            idx = [where[(i, f)] for i, f in zip(reference.image_ids, reference.findings, strict=True)]
            per_run[o.run] = float(np.nanmean(map_ssim(reference.maps, o.maps[idx])))
        ssim = float(np.mean(list(per_run.values())))
        base = baseline["ssim"]
        return {"ssim": ssim, "ssim_per_run": per_run, "n_items": len(reference), "baseline_ssim": base,
                "pass": bool(base is None or ssim > base), "rule": "stand-in"}  # fmt: skip

    def spread(blocks):
        out = {}
        for k in ("hit_rate", "miou_otsu", "miou_tuned", "auprc"):
            vals = [b[k]["value"] for b in blocks.values() if b and b.get(k) and b[k]["value"] is not None]
            out[k] = {"min": min(vals), "max": max(vals), "std": float(np.std(vals))} if vals else None
        return out

    trust.randomisation_block, trust.agreement_block, trust.spread = (
        randomisation_block,
        agreement_block,
        spread,
    )
    verdict_mod = types.ModuleType("chestxai.scorecard.verdict")

    def verdict(entry, name=None):
        return {
            "passes": ["randomization"],
            "fails": [],
            "not_measured": [],
            "trusted": True,
            "line": "stand-in",
        }

    def recommend(entries, model=None):
        note = "agreement with ground truth measures the model and the method together"
        for m, by in entries.items():
            for layer in by:
                pipeline = {"model": model, "method": m, "layer": layer, "hit_rate": None}
                return {"pipeline": pipeline, "trusted": [], "line": f"stand-in; {note}", "note": note}
        return {"pipeline": None, "trusted": [], "line": f"none; {note}", "note": note}

    verdict_mod.verdict, verdict_mod.recommend = verdict, recommend
    anchors = types.ModuleType("chestxai.scorecard.anchors")
    anchors.chestxray8_table = lambda per_finding: "| T(IoBB) | ... |"
    return {m.__name__: m for m in (loc, trust, verdict_mod, anchors)}


@pytest.fixture(autouse=True)
def protocol_modules(monkeypatch):
    """The stand-ins for whichever protocol module is not in the tree yet (see the module doc)."""
    import chestxai.scorecard as package

    for name, module in _fake_modules().items():
        if importlib.util.find_spec(name) is None:
            monkeypatch.setitem(sys.modules, name, module)
            monkeypatch.setattr(package, name.rsplit(".", 1)[1], module, raising=False)
    yield


@pytest.fixture(scope="module")
def boxed_run(tmp_path_factory):
    """A tiny binary run (untrained resnet18 at 32 px) whose cache has Pneumonia boxes on test and val."""
    root = tmp_path_factory.mktemp("scorecard")
    with torch.random.fork_rng(devices=[]):
        run, _ = write_tiny_run(root / "a", "binary", 1, n=48, boxes=box_table(48))
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """The same kind of run without any ground truth (the quickstart's situation)."""
    root = tmp_path_factory.mktemp("scorecard-plain")
    run, _ = write_tiny_run(root / "a", "binary", 1, n=48)
    return run

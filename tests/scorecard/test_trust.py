"""Arun et al.'s randomisation, repeatability and reproducibility criteria (scorecard/trust.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from chestxai.evaluation.cost import torch_threads
from chestxai.explain.map_agreement import map_ssim, random_pairs, random_pairs_baseline
from chestxai.explain.sanity import parameter_blocks
from chestxai.models.classifier import ChestClassifier
from chestxai.models.preprocess import to_input
from chestxai.scorecard import trust
from chestxai.scorecard.maps import MapSet
from chestxai.scorecard.trust import agreement_block, randomisation_block, spread
from chestxai.testing import blob_dataset

PREPROCESS = {"size": 32, "mean": 0.5, "std": 0.25}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread (the shared 2-core machine; seeded results stay identical)."""
    with torch_threads(1):
        yield


class TwoStage(nn.Module):
    """A timm-shaped backbone with two stages (``layer1`` at 32 px, ``layer2`` at 16 px)."""

    num_features = 16

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean(dim=(2, 3))


@pytest.fixture(scope="module")
def trained():
    """The two-stage CNN trained (seeded, 60 steps of 32) to find the blob, and 8 held-out positives."""
    images, labels, _ = blob_dataset(260, size=32, seed=1)
    with torch_threads(1):
        torch.manual_seed(0)
        config = {"name": "two-stage", "num_labels": 1, "task": "binary", "head": "pooled", "input_size": 32}
        model = ChestClassifier(
            TwoStage(), "cnn", 1, "binary", head="pooled", config=config | {"in_chans": 1}
        )
        x_all = to_input(images[:200], PREPROCESS)
        y_all = torch.as_tensor(labels[:200], dtype=torch.float32)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(60):
            idx = torch.randint(0, len(x_all), (32,), generator=gen)
            loss = nn.functional.binary_cross_entropy_with_logits(model(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    positives = 200 + np.flatnonzero(labels[200:, 0] == 1)[:8]
    return model.eval(), to_input(images[positives], PREPROCESS)


def _trained_maps(model, x, method, layer=None):
    from chestxai.explain.explainer import Explainer

    return Explainer(model, method, layer=layer).explain(x, [0] * len(x))


def test_a_weight_independent_method_fails_randomisation(trained, edges):
    model, x = trained
    baseline = random_pairs_baseline(_trained_maps(model, x, edges))
    out = randomisation_block(model, x, None, edges, None, baseline=baseline)
    assert out["final_ssim"] == pytest.approx(1.0) and out["final_spearman"] == pytest.approx(1.0)
    assert out["baseline_ssim"] == baseline["ssim"] < 0.9  # edges of different images differ
    assert out["pass"] is False and out["verdict"].startswith("FAILED")
    assert out["spearman_rule_pass"] is False  # Adebayo's rule agrees
    assert "below the baseline" in out["rule"]


@pytest.mark.parametrize("method, layer", [("gradcam", "backbone.layer2"), ("hirescam", "backbone.layer1")])
def test_cam_methods_on_a_trained_model_are_evaluated(trained, method, layer):
    model, x = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    baseline = random_pairs_baseline(_trained_maps(model, x, method, layer))
    out = randomisation_block(model, x, [0] * len(x), method, layer, baseline=baseline)
    blocks = [b for b, _ in parameter_blocks(model)]
    assert [r["randomised"] for r in out["cascading"]] == blocks
    assert [r["blocks"] for r in out["independent"]] == [[b] for b in blocks]
    assert out["cascading"][-1]["blocks"] == blocks  # the last cascading step: every block random
    assert out["layer"] == layer and out["n_images"] == len(x) == 8
    assert out["final_ssim"] == out["cascading"][-1]["ssim"] and out["baseline_ssim"] == baseline["ssim"]
    assert out["pass"] is (out["final_ssim"] < out["baseline_ssim"])
    assert isinstance(out["spearman_rule_pass"], bool) and out["verdict"]
    for k, v in model.state_dict().items():  # the trained model is untouched
        assert torch.equal(v, before[k]), k


def _fake_sanity(final_ssim, spearman=0.3, passed=True):
    row = {
        "randomised": "head",
        "blocks": ["head"],
        "spearman": spearman,
        "ssim": final_ssim,
        "n_compared": 4,
    }
    return {
        "cascading": [row],
        "independent": [row],
        "final": row,
        "passed": passed,
        "layer": "x",
        "n_images": 4,
        "n_empty_trained_maps": 0,
    }


@pytest.mark.parametrize(
    "final, base, expected", [(0.20, 0.30, True), (0.30, 0.30, False), (0.45, 0.30, False), (None, 0.3, None)]
)
def test_the_pass_rule_is_final_ssim_strictly_below_the_baseline(monkeypatch, final, base, expected):
    monkeypatch.setattr(trust, "randomisation_similarity", lambda *a, **k: _fake_sanity(final))
    baseline = {"ssim": base, "spearman": 0.1, "n_pairs": 50}
    out = randomisation_block(None, torch.zeros(4, 1, 8, 8), None, "m", None, baseline=baseline)
    assert out["pass"] is expected and out["baseline_ssim"] == base and out["final_ssim"] == final
    assert out["spearman_rule_pass"] is True  # carried beside, not mixed into the pass rule
    assert out["verdict"].startswith({True: "passed", False: "FAILED", None: "no verdict"}[expected])


def test_a_pass_against_an_image_independent_baseline_says_the_bar_is_low(monkeypatch):
    monkeypatch.setattr(trust, "randomisation_similarity", lambda *a, **k: _fake_sanity(0.5))
    baseline = {"ssim": 0.9, "spearman": 0.8, "n_pairs": 50}  # maps of different images alike
    out = randomisation_block(None, torch.zeros(4, 1, 8, 8), None, "m", None, baseline=baseline)
    assert out["pass"] is True and "low bar" in out["verdict"]


def test_the_random_pairs_baseline_is_the_mean_ssim_of_50_pairs_of_different_images():
    maps = np.random.default_rng(0).random((12, 16, 16))
    base = random_pairs_baseline(maps, seed=3)
    pairs = random_pairs(12, 50, seed=3)
    assert len(pairs) == 50 and (pairs[:, 0] != pairs[:, 1]).all()
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == 50  # distinct unordered pairs
    assert base["ssim"] == pytest.approx(map_ssim(maps[pairs[:, 0]], maps[pairs[:, 1]]).mean(), abs=1e-12)
    assert base["n_pairs"] == 50


def _mapset(maps, run="ref", ids=None, findings=None):
    n = len(maps)
    ids = ids or [f"img{i}" for i in range(n)]
    return MapSet(
        run=run,
        method="gradcam",
        layer="layer2",
        split="test",
        image_ids=list(ids),
        findings=list(findings or ["Mass"] * n),
        groups=list(ids),
        maps=np.asarray(maps, np.float32),
        probabilities=np.full(n, 0.5),
        truth=[None] * n,
    )


def _structured_maps(n, size=16, seed=0):
    """Maps sharing a smooth common part (so maps of different images are somewhat alike) plus a blob
    of their own."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    common = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 3) ** 2))
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(2, size - 2, 2)
        own = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.0**2))
        m = 0.5 * common + 0.5 * own
        out.append((m - m.min()) / (m.max() - m.min()))
    return np.stack(out).astype(np.float32)


def test_two_identical_runs_have_repeatability_ssim_one_and_pass():
    maps = _structured_maps(10)
    ref = _mapset(maps)
    base = random_pairs_baseline(maps)
    out = agreement_block(ref, [_mapset(maps, run="seed1")], base, "repeatability")
    assert out["ssim"] == pytest.approx(1.0) and out["ssim_per_run"] == {"seed1": pytest.approx(1.0)}
    assert out["spearman"] == pytest.approx(1.0)
    assert out["pass"] is True and out["baseline_ssim"] == base["ssim"] < 0.9
    assert out["n_items"] == 10 and out["n_items_per_run"] == {"seed1": 10} and out["kind"] == "repeatability"
    assert out["verdict"].startswith("passed") and "above the baseline" in out["rule"]


def test_maps_of_unrelated_noise_fail_reproducibility():
    maps = _structured_maps(10)
    base = random_pairs_baseline(maps)
    noise = np.random.default_rng(5).random((10, 16, 16))
    out = agreement_block(_mapset(maps), [_mapset(noise, run="densenet")], base, "reproducibility")
    assert out["ssim"] < base["ssim"]
    assert out["pass"] is False and out["verdict"].startswith("FAILED") and "architecture" in out["verdict"]


def test_items_are_matched_by_id_and_other_sizes_resized_to_the_reference():
    maps = _structured_maps(6)
    ref = _mapset(maps, findings=["Mass"] * 3 + ["Nodule"] * 3, ids=["a", "b", "c", "a", "b", "c"])
    # the other run: twice the size (each pixel repeated 2 x 2, which bilinear halving restores exactly),
    # items in another order, item ("b", "Nodule") missing and one item the reference does not have
    order = [5, 3, 0, 2, 1]
    big = np.kron(maps[order], np.ones((2, 2), np.float32))
    extra = np.random.default_rng(1).random((1, 32, 32)).astype(np.float32)
    ids = ["c", "a", "a", "c", "b", "z"]
    findings = ["Nodule", "Nodule", "Mass", "Mass", "Mass", "Mass"]
    other = _mapset(np.concatenate([big, extra]), run="ref", ids=ids, findings=findings)
    out = agreement_block(ref, [other, other], {"ssim": 0.1}, "repeatability")
    assert out["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert out["n_items_per_run"] == {"ref": 5, "ref#2": 5} and out["n_items"] == 10  # names made unique


def test_the_agreement_figures_by_hand():
    rng = np.random.default_rng(2)
    ref = rng.random((4, 12, 12))
    run_a = ref.copy()
    run_a[2:] = rng.random((2, 12, 12))  # two items alike, two not
    run_b = rng.random((4, 12, 12))
    out = agreement_block(
        _mapset(ref), [_mapset(run_a, "a"), _mapset(run_b, "b")], {"ssim": 0.5}, "repeatability"
    )
    s_a, s_b = map_ssim(ref, run_a), map_ssim(ref, run_b)
    assert out["ssim_per_run"]["a"] == pytest.approx(s_a.mean())
    assert out["ssim_per_run"]["b"] == pytest.approx(s_b.mean())
    assert out["ssim"] == pytest.approx(np.concatenate([s_a, s_b]).mean())
    assert out["pass"] is (out["ssim"] > 0.5)


def test_an_empty_reference_map_is_left_out_and_bad_calls_are_refused():
    ref = _structured_maps(3)
    ref[0] = 0.0  # an empty (constant) Grad-CAM: nothing to compare
    out = agreement_block(_mapset(ref), [_mapset(ref, "s1")], {"ssim": 0.2}, "repeatability")
    assert out["n_items"] == 2 and out["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown agreement kind"):
        agreement_block(_mapset(ref), [_mapset(ref)], {"ssim": 0.2}, "replicability")
    with pytest.raises(ValueError, match="at least one other run"):
        agreement_block(_mapset(ref), [], {"ssim": 0.2}, "reproducibility")
    none = agreement_block(
        _mapset(ref), [_mapset(ref, ids=["x", "y", "z"])], {"ssim": 0.2}, "reproducibility"
    )
    assert none["ssim"] is None and none["pass"] is None and none["verdict"].startswith("no verdict")


def _ci(v):
    return {"value": v, "ci_low": None if v is None else v - 0.1, "ci_high": None if v is None else v + 0.1}


def test_spread_of_the_localisation_figures_across_runs():
    blocks = {
        "s0": {
            "hit_rate": _ci(0.5),
            "miou_otsu": _ci(0.2),
            "miou_tuned": _ci(None),
            "iobb_accuracy": {"0.1": _ci(0.4)},
        },
        "s1": {
            "hit_rate": _ci(0.7),
            "miou_otsu": _ci(0.3),
            "miou_tuned": _ci(None),
            "iobb_accuracy": {"0.1": _ci(0.6)},
        },
        "s2": {
            "hit_rate": _ci(0.9),
            "miou_otsu": _ci(0.4),
            "miou_tuned": _ci(None),
            "iobb_accuracy": {"0.1": _ci(0.8)},
        },
        "nogt": None,
    }
    out = spread(blocks)
    hit = out["hit_rate"]
    assert hit["values"] == {"s0": 0.5, "s1": 0.7, "s2": 0.9} and hit["n_runs"] == 3
    assert hit["mean"] == pytest.approx(0.7) and hit["min"] == 0.5 and hit["max"] == 0.9
    assert hit["std"] == pytest.approx(0.2)  # sample std of 0.5, 0.7, 0.9
    assert out["iobb_accuracy.0.1"]["std"] == pytest.approx(0.2)
    assert out["miou_tuned"] == {
        "values": {},
        "mean": None,
        "min": None,
        "max": None,
        "std": None,
        "n_runs": 0,
    }
    assert out["auprc"]["n_runs"] == 0  # absent in every block
    assert spread({"s0": blocks["s0"]})["hit_rate"]["std"] is None  # one run: no spread


@pytest.mark.parametrize(
    "baseline, why",
    [
        ({"ssim": None, "n_pairs": 0}, "fewer than two maps of different images"),
        ({"ssim": None, "n_pairs": 50}, "the first map of each of its 50 pairs is empty"),
    ],
)
def test_no_baseline_no_verdict_and_it_says_why(monkeypatch, baseline, why):
    monkeypatch.setattr(trust, "randomisation_similarity", lambda *a, **k: _fake_sanity(0.1))
    out = randomisation_block(None, torch.zeros(4, 1, 8, 8), None, "m", None, baseline=baseline)
    assert out["pass"] is None and out["baseline_ssim"] is None
    assert out["verdict"].startswith(f"no verdict: no random-pairs baseline ({why}")

"""Model-randomisation sanity check (Adebayo et al. 2018): Grad-CAM passes, an edge detector fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.base_cam import BaseCAM
from scipy import ndimage

from chestxai.explain.methods import METHODS, Method
from chestxai.explain.sanity import (
    SANITY_THRESHOLD,
    map_similarity,
    parameter_blocks,
    randomisation_similarity,
    randomise_,
)
from chestxai.models.preprocess import to_input


class EdgeMap(BaseCAM):
    """Sobel gradient magnitude of the *input*: looks like a saliency map, ignores the weights."""

    def __init__(self, model, target_layers, reshape_transform=None):
        super().__init__(model, target_layers, reshape_transform, uses_gradients=False)

    def forward(self, input_tensor, targets=None, eigen_smooth=False):
        img = input_tensor.detach().float().cpu().numpy()[:, 0]
        mag = np.hypot(ndimage.sobel(img, axis=1), ndimage.sobel(img, axis=2))
        lo = mag.min(axis=(1, 2), keepdims=True)
        return (mag - lo) / (mag.max(axis=(1, 2), keepdims=True) - lo + 1e-7)


class EdgeMethod(Method):
    summary = "Sobel edges of the input (weight-independent; a test double)"

    def build(self, model, target_layers, reshape_transform=None, rng=None):
        return EdgeMap(model, target_layers, reshape_transform)


@pytest.fixture
def edges(monkeypatch):
    METHODS.names()  # load the package's methods first
    monkeypatch.setitem(METHODS._items, "edges", EdgeMethod)
    return "edges"


def _inputs(task, n=12):
    positives = np.flatnonzero(task.labels[:, 0] == 1)[:n]
    return to_input(task.images[positives], task.preprocess)


def test_gradcam_passes_on_a_trained_model(blob_task):
    x = _inputs(blob_task)
    before = {k: v.clone() for k, v in blob_task.model.state_dict().items()}
    out = randomisation_similarity(blob_task.model, x, "gradcam", seed=0)
    assert out["passed"] is True and "passed" in out["verdict"]
    assert out["n_images"] == len(x) == 12 and out["threshold"] == SANITY_THRESHOLD
    assert out["final"]["spearman"] < SANITY_THRESHOLD
    blocks = [b for b, _ in parameter_blocks(blob_task.model)]
    assert blocks[:3] == ["head", "backbone.stage", "backbone.stem.4"]  # top down, the stem opened
    assert [r["randomised"] for r in out["cascading"]] == blocks
    assert [r["blocks"] for r in out["independent"]] == [[b] for b in blocks]
    assert out["cascading"][-1]["blocks"] == blocks  # the last step has every block random
    for row in out["cascading"] + out["independent"]:
        assert 0 <= row["spearman"] <= 1 and (row["ssim"] is None or -1 <= row["ssim"] <= 1)
    # the trained model itself is untouched
    for k, v in blob_task.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_weight_independent_method_fails(blob_task, edges):
    x = _inputs(blob_task)
    out = randomisation_similarity(blob_task.model, x, edges, modes=("cascading",))
    assert out["passed"] is False and out["verdict"].startswith("FAILED")
    assert out["final"]["spearman"] == pytest.approx(1.0) and out["final"]["ssim"] == pytest.approx(1.0)
    assert out["independent"] == []


def test_map_similarity_by_hand():
    rng = np.random.default_rng(0)
    a = rng.random((3, 16, 16))
    b = a.copy()
    b[1] = 1 - a[1]  # reversed ranks: |Spearman| 1
    b[2] = 0.0  # constant: no ranks, counted as 0
    sim = map_similarity(a, b)
    assert sim["spearman"][0] == pytest.approx(1) and sim["spearman"][1] == pytest.approx(1)
    assert sim["spearman"][2] == 0 and list(sim["constant"]) == [False, False, True]
    assert sim["ssim"][0] == pytest.approx(1, abs=1e-4) and sim["ssim"][1] < 0.5
    with pytest.raises(ValueError, match="N x H x W"):
        map_similarity(a, b[:2])


def test_randomise_is_seeded_and_changes_every_parameter(blob_task):
    import copy

    nets = [copy.deepcopy(blob_task.model) for _ in range(2)]
    for net in nets:
        randomise_([net.backbone], seed=3)
    for (name, p0), p1, p in zip(
        nets[0].named_parameters(), nets[1].parameters(), blob_task.model.parameters(), strict=True
    ):
        assert torch.equal(p0, p1), name
        if name.startswith("backbone") and "weight" in name and p.ndim > 1:
            assert not torch.equal(p0, p), name


def test_bad_modes_are_refused_before_work(blob_task):
    with pytest.raises(ValueError, match="cascading"):
        randomisation_similarity(blob_task.model, torch.zeros(1, 1, 64, 64), modes=("shuffled",))


def test_empty_trained_maps_are_left_out_not_counted_as_changed():
    ref = np.zeros((2, 12, 12))
    ref[1, 3:6, 3:6] = 1.0  # map 0 is empty (constant)
    other = np.random.default_rng(1).random((2, 12, 12))
    sim = map_similarity(ref, other)
    assert np.isnan(sim["spearman"][0]) and list(sim["undefined"]) == [True, False]
    assert np.isnan(sim["ssim"][0]) and not np.isnan(sim["ssim"][1])


def test_no_verdict_when_every_trained_map_is_empty(blob_task, monkeypatch):
    """A method whose maps are all constant cannot pass or fail: passed is None, and it says why."""

    class Blank(EdgeMap):
        def forward(self, input_tensor, targets=None, eigen_smooth=False):
            return np.zeros((len(input_tensor), *input_tensor.shape[-2:]), np.float32)

    class BlankMethod(Method):
        def build(self, model, target_layers, reshape_transform=None, rng=None):
            return Blank(model, target_layers, reshape_transform)

    METHODS.names()
    monkeypatch.setitem(METHODS._items, "blank", BlankMethod)
    out = randomisation_similarity(blob_task.model, _inputs(blob_task, 3), "blank", modes=("cascading",))
    assert out["passed"] is None and out["n_empty_trained_maps"] == 3 and "no verdict" in out["verdict"]
    assert "3 of the trained model's 3 maps are empty" in out["verdict"]
    assert out["final"]["spearman"] is None and out["final"]["n_compared"] == 0

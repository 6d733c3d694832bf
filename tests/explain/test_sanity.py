"""Model-randomisation sanity check (Adebayo et al. 2018): Grad-CAM passes, an edge detector fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chestxai.explain.methods import METHODS, Method
from chestxai.explain.sanity import (
    SANITY_THRESHOLD,
    map_similarity,
    parameter_blocks,
    randomisation_similarity,
    randomise_,
)
from chestxai.models.preprocess import to_input


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

    from pytorch_grad_cam.base_cam import BaseCAM

    class Blank(BaseCAM):
        def __init__(self, model, target_layers, reshape_transform=None):
            super().__init__(model, target_layers, reshape_transform, uses_gradients=False)

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


# ---- why a row stays alike (issue 21) ---------------------------------------------------------------
class _Residual(torch.nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.branch = torch.nn.Linear(2, 2, bias=False)
        torch.nn.init.eye_(self.branch.weight)
        self.branch.weight.data *= scale

    def forward(self, x):
        return x + self.branch(x)


def test_block_output_change_and_residual_share_by_hand():
    from chestxai.explain.sanity import block_output_change, residual_share

    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    trained = torch.nn.Sequential(_Residual(0.1))
    randomised = torch.nn.Sequential(_Residual(0.3))
    # outputs 1.1 x and 1.3 x: relative change 0.2 / 1.1
    assert block_output_change(trained, randomised, ["0"], x) == pytest.approx(0.2 / 1.1)
    assert block_output_change(trained, randomised, ["0"], x, batch_size=1) == pytest.approx(0.2 / 1.1)
    # the block adds 0.1 x to its input: ||0.1 x|| / ||1.1 x||
    assert residual_share(trained, ["0"], x) == pytest.approx(0.1 / 1.1)
    assert block_output_change(trained, randomised, ["nope"], x) is None
    assert residual_share(torch.nn.Sequential(torch.nn.Linear(2, 3)), ["0"], x) is None  # shapes differ


def test_why_unchanged_names_each_measured_reason():
    from chestxai.explain.sanity import why_unchanged

    alike = {"spearman": 0.71, "ssim": 0.68, "n_pairs": 50}
    why = why_unchanged("layer4.1", "layer1.1", "above", 0.038, 0.033, alike)
    assert "only 3.8%" in why and "nearly an identity" in why and "3.3%" in why
    assert "through the gradient" in why and "already alike" in why and "0.71" in why
    why = why_unchanged(
        "layer1", "layer1.1", "holds", 0.26, 0.4, {"spearman": 0.1, "ssim": 0.1, "n_pairs": 50}
    )
    assert "by 26%" in why and "holds the explained layer" in why and "depend little" in why
    assert "identity" not in why and "already alike" not in why


def test_every_unchanged_row_says_why_and_the_baseline_is_attached(blob_task, edges):
    from chestxai.explain.explainer import Explainer
    from chestxai.explain.map_agreement import random_pairs_baseline

    x = _inputs(blob_task)
    out = randomisation_similarity(blob_task.model, x, edges, seed=0)
    rows = out["cascading"] + out["independent"]
    assert rows and all(r["spearman"] >= SANITY_THRESHOLD for r in rows)  # edges ignore the weights
    assert all(r["why"] and "output_change" in r for r in rows)
    trained = Explainer(blob_task.model, edges, seed=0).explain(x, [0] * len(x))
    assert out["baseline_ssim"] == pytest.approx(random_pairs_baseline(trained)["ssim"])
    gradcam = randomisation_similarity(blob_task.model, x, "gradcam", seed=0, modes=("cascading",))
    for r in gradcam["cascading"]:
        assert ("why" in r) == (r["spearman"] >= SANITY_THRESHOLD)

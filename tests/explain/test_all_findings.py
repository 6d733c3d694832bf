"""``gradcam_all_findings``: every finding's Grad-CAM in one forward, arithmetic in torch (issue 24).

It must be the Explainer's own maps: for each (image, finding) pair, ``Explainer.explain`` (pytorch-
grad-cam, NumPy arithmetic, the alignment shift) is the reference, within 1e-4 per pixel.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chestxai.explain import Explainer
from chestxai.explain.alignment import shift_maps
from chestxai.explain.all_findings import _shift, gradcam_all_findings
from chestxai.explain.methods import UnsupportedMethodError
from chestxai.models import create_model

FINDINGS = 3


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("resnet18", FINDINGS, "multilabel", input_size=32).eval()


@pytest.mark.parametrize("layer", [None, "backbone.layer3"])  # the default (final) and an inner layer
def test_every_findings_map_is_the_explainers_map(model, layer) -> None:
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    explainer = Explainer(model, "gradcam", layer=layer)
    got = gradcam_all_findings(explainer, x)
    assert got.shape == (2, FINDINGS, 32, 32) and got.device == x.device
    want = explainer.explain(x.repeat_interleave(FINDINGS, 0), list(range(FINDINGS)) * 2)
    np.testing.assert_allclose(got.reshape(-1, 32, 32).numpy(), want, atol=1e-4)
    assert any(explainer.last_shift) or layer is None  # an inner layer's maps are shifted
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_the_device_shift_is_alignment_shift_maps() -> None:
    maps = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(2))
    for shift in [(0.5, -1.25), (2.0, 0.0), (-0.75, 3.5)]:
        np.testing.assert_allclose(_shift(maps, shift).numpy(), shift_maps(maps.numpy(), shift), atol=1e-5)


def test_other_methods_are_refused(model) -> None:
    with pytest.raises(UnsupportedMethodError, match="Grad-CAM on a CNN"):
        gradcam_all_findings(Explainer(model, "gradcam++"), torch.zeros(1, 1, 32, 32))


def test_one_backward_per_finding_where_vmap_has_no_rule(model, monkeypatch) -> None:
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    explainer = Explainer(model, "gradcam")
    batched = gradcam_all_findings(explainer, x)
    real = torch.autograd.grad

    def no_vmap(*args, is_grads_batched=False, **kw):
        if is_grads_batched:
            raise RuntimeError("Batching rule not implemented")
        return real(*args, **kw)

    monkeypatch.setattr(torch.autograd, "grad", no_vmap)
    np.testing.assert_allclose(gradcam_all_findings(explainer, x).numpy(), batched.numpy(), atol=1e-6)

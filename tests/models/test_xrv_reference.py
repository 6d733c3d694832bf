"""chestxai's torchxrayvision support against the package itself (a test dependency; users do not
need it): the catalogue equals its ``model_urls``, and files written by its own classes give the
same logits and the same decisions through ``xrv:NAME`` as through torchxrayvision's loader.
Published weights cannot be downloaded here, so the files hold seeded random weights in the
published formats (a pickled ``xrv.models.DenseNet``, a ResNet-50 state dict)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from xrv_helpers import randomise_statistics, xrv_classifier

from chestxai.models import xrv as X
from chestxai.models.preprocess import to_input

xrv = pytest.importorskip("torchxrayvision", reason="the reference package is installed by the dev extra")


def _nan_to_none(values) -> list:
    return [None if v is None or math.isnan(v) else pytest.approx(v, rel=1e-7) for v in values]


@pytest.mark.parametrize("name", sorted(X.CATALOGUE))
def test_catalogue_entry_equals_the_packages(name):
    ours, theirs = X.CATALOGUE[name], xrv.models.model_urls[name]
    assert ours.url == theirs["weights_url"]
    assert ours.size == theirs["input_resolution"]
    assert _nan_to_none(ours.op_threshs) == _nan_to_none(theirs["op_threshs"])
    assert list(ours.labels) == theirs["labels"]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """torchxrayvision's cache for both loaders; the package's download is refused."""
    monkeypatch.setenv("TORCHXRAYVISION_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(xrv.models, "get_weights", lambda w, cache_dir=None: str(tmp_path / _filename(w)))
    return tmp_path


def _filename(name: str) -> str:
    return X.CATALOGUE[name].filename


def _compare(name: str, reference: nn.Module, size: int) -> None:
    """Same logits for the kept outputs, and the same decision as torchxrayvision's op_norm."""
    model, names, preprocess, thresholds = xrv_classifier(f"xrv:{name}")
    assert preprocess["size"] == size
    images = np.random.default_rng(0).integers(0, 256, (2, size, size), dtype=np.uint8)
    ours = to_input(images, preprocess)
    theirs = torch.from_numpy(np.stack([xrv.datasets.normalize(im, 255) for im in images])[:, None]).float()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3)  # the same [-1024, 1024] input
    keep = [reference.targets.index(n) for n in names]
    assert names == [t for t in reference.targets if t]
    with torch.no_grad():
        calibrated = reference(theirs)[:, keep]  # op_norm: an output's operating point maps to 0.5
        op_threshs, reference.op_threshs = reference.op_threshs, None
        logits = reference(theirs)[:, keep]
        reference.op_threshs = op_threshs
        got = model(ours)
    torch.testing.assert_close(got, logits, rtol=1e-4, atol=1e-4)
    ops = torch.tensor([thresholds[n] for n in names])
    known = ~torch.isnan(reference.op_threshs[keep])
    assert torch.equal((torch.sigmoid(got) > ops)[:, known], (calibrated > 0.5)[:, known])


@pytest.mark.parametrize("name", ["densenet121-res224-all", "densenet121-res224-rsna"])
def test_a_pickled_torchxrayvision_densenet_gives_the_packages_outputs(cache_dir, name):
    torch.manual_seed(0)
    torch.save(
        randomise_statistics(xrv.models.DenseNet(weights=None), linear_bias=True).eval(),
        cache_dir / _filename(name),
    )
    reference = xrv.models.DenseNet(weights=name).eval()  # the package's own loading of that file
    _compare(name, reference, 224)


def test_a_torchxrayvision_resnet50_state_dict_gives_the_packages_outputs(cache_dir):
    name = "resnet50-res512-all"
    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=18)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    torch.save(randomise_statistics(net, linear_bias=True).state_dict(), cache_dir / _filename(name))
    reference = xrv.models.ResNet(weights=name).eval()
    _compare(name, reference, 512)

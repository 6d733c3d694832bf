"""torchxrayvision chest X-ray weights (`xrv:NAME` / `xrv:PATH`) without the package: the files
are written here as torchxrayvision writes them (a whole pickled DenseNet, a ResNet-50 state dict)."""

from __future__ import annotations

import socket
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from xrv_helpers import randomise_statistics, xrv_checkpoint, xrv_classifier

from chestxai.models import create_model
from chestxai.models import xrv as X
from chestxai.models.checkpoint import load_model, save_atomic
from chestxai.models.preprocess import to_input
from chestxai.models.pretrained import WeightsUnavailableError

RAN = []  # set by the fake class's code if unpickling ever ran it


class DenseNet(nn.Module):
    """Shaped like ``torchxrayvision.models.DenseNet``: torchvision's densenet121 on 1 channel, 18 outputs."""

    def __init__(self) -> None:
        super().__init__()
        tv = torchvision.models.densenet121(num_classes=18)
        tv.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.features, self.classifier = tv.features, tv.classifier
        self.register_buffer("op_threshs", torch.full((18,), 0.25))
        self.upsample = nn.Upsample(size=(224, 224), mode="bilinear", align_corners=False)

    def __setstate__(self, state):  # a full unpickle would run this
        RAN.append("DenseNet.__setstate__")
        super().__setstate__(state)

    def forward(self, x):  # torchxrayvision's forward without op_norm: the logits
        out = F.adaptive_avg_pool2d(F.relu(self.features(x)), 1).flatten(1)
        return self.classifier(out)


def _save_as_torchxrayvision(model: nn.Module, path, legacy: bool = False) -> None:
    """``torch.save(model)`` with the class importable as ``torchxrayvision.models.DenseNet`` only
    while saving: loading must work without it."""
    package, module = types.ModuleType("torchxrayvision"), types.ModuleType("torchxrayvision.models")
    package.models = module
    module.DenseNet = DenseNet
    old = DenseNet.__module__, DenseNet.__qualname__
    names = ("torchxrayvision", "torchxrayvision.models")
    real = {name: sys.modules[name] for name in names if name in sys.modules}  # the package, if installed
    DenseNet.__module__ = "torchxrayvision.models"
    sys.modules.update({"torchxrayvision": package, "torchxrayvision.models": module})
    try:
        torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    finally:
        DenseNet.__module__, DenseNet.__qualname__ = old
        for name in names:
            sys.modules.pop(name)
        sys.modules.update(real)


@pytest.fixture(scope="module")
def xrv_densenet(tmp_path_factory):
    torch.manual_seed(0)
    reference = DenseNet().eval()
    randomise_statistics(reference)
    path = tmp_path_factory.mktemp("xrv") / X.CATALOGUE["densenet121-res224-all"].filename
    _save_as_torchxrayvision(reference, path)
    return path, reference


@pytest.fixture
def offline_guard(monkeypatch):
    """Records network probes and fails the test on any download."""
    probes = []

    def forbidden(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: probes.append(a) or forbidden())
    return probes


def test_pickled_densenet_is_read_without_running_or_importing_its_code(xrv_densenet, monkeypatch) -> None:
    from chestxai.models.xrv_file import read_xrv_file

    path, reference = xrv_densenet
    for name in ("torchxrayvision", "torchxrayvision.models"):  # the package may be installed and imported
        monkeypatch.delitem(sys.modules, name, raising=False)
    RAN.clear()
    state = read_xrv_file(path)
    assert RAN == [] and "torchxrayvision" not in sys.modules
    expected = reference.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_xrv_densenet_as_backbone_to_fine_tune(xrv_densenet) -> None:
    path, reference = xrv_densenet
    model = create_model("densenet121", 3, "multilabel", weights=f"xrv:{path}")
    assert model.head.fc.out_features == 3  # a new head
    got = model.backbone.state_dict()
    for key, value in reference.features.state_dict().items():
        assert torch.equal(got[f"features.{key}"], value), key  # 1-channel conv0 kept, not summed


def test_xrv_classifier_equals_the_reference_forward_on_its_own_normalisation(xrv_densenet) -> None:
    path, reference = xrv_densenet
    model, names, preprocess, thresholds = xrv_classifier(f"xrv:{path}")
    assert preprocess == {"size": 224, "mean": 0.5, "std": 1 / 2048}
    assert names == list(X.PATHOLOGIES) and thresholds["Atelectasis"] == pytest.approx(
        0.25
    )  # the file's op_threshs
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224), dtype=np.uint8)
    x = to_input(images, preprocess)
    assert x.min() >= -1024 and x.max() <= 1024 and x.max() > 1000  # torchxrayvision's pixel range
    raw = torch.as_tensor(images, dtype=torch.float32)[:, None] / 255 * 2048 - 1024
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(raw), rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")
def test_legacy_format_pickle_is_refused_with_the_conversion(tmp_path) -> None:
    from chestxai.models.xrv_file import read_xrv_file

    path = tmp_path / "old.pt"
    _save_as_torchxrayvision(DenseNet(), path, legacy=True)
    RAN.clear()
    with pytest.raises(ValueError, match="legacy") as info:
        read_xrv_file(path)
    assert "torch.save(m.state_dict()" in str(info.value) and RAN == []


def test_xrv_name_is_found_in_the_torchxrayvision_cache_without_network(
    xrv_densenet, tmp_path, monkeypatch, offline_guard
) -> None:
    path, reference = xrv_densenet
    monkeypatch.setenv("TORCHXRAYVISION_CACHE_DIR", str(path.parent))
    model = create_model("densenet121", 1, "binary", weights="xrv:densenet121-res224-all")
    assert torch.equal(model.backbone.features.norm5.running_var, reference.features.norm5.running_var)
    assert offline_guard == []


def test_single_dataset_weights_keep_only_the_findings_they_learnt(tmp_path, monkeypatch) -> None:
    """torchxrayvision's RSNA DenseNet learnt 2 of its 18 outputs: the classifier has those 2, with
    their published operating points, whether named or given as a local copy of the file."""
    torch.manual_seed(0)
    reference = DenseNet().eval()
    reference.op_threshs = None  # as published: the operating points are the package's, not the file's
    randomise_statistics(reference)
    entry = X.CATALOGUE["densenet121-res224-rsna"]
    _save_as_torchxrayvision(reference, tmp_path / entry.filename)
    monkeypatch.setenv("TORCHXRAYVISION_CACHE_DIR", str(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224), dtype=np.uint8)
    for spelling in ("xrv:densenet121-res224-rsna", f"xrv:{tmp_path / entry.filename}"):
        model, names, preprocess, thresholds = xrv_classifier(spelling)
        assert names == ["Pneumonia", "Lung Opacity"] and model.num_labels == 2
        assert thresholds == {
            "Pneumonia": pytest.approx(0.13486601),
            "Lung Opacity": pytest.approx(0.13511065),
        }
        raw = torch.as_tensor(images, dtype=torch.float32)[:, None] / 255 * 2048 - 1024
        with torch.no_grad():
            torch.testing.assert_close(
                model(to_input(images, preprocess)), reference(raw)[:, [8, 16]], rtol=1e-4, atol=1e-4
            )


def test_xrv_name_offline_miss_says_where_to_put_the_file(tmp_path, monkeypatch, offline_guard) -> None:
    monkeypatch.setenv("TORCHXRAYVISION_CACHE_DIR", str(tmp_path / "xrv"))
    monkeypatch.setenv("CHESTXAI_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailableError) as info:
        create_model("densenet121", 1, "binary", weights="xrv:densenet121-res224-all")
    entry = X.CATALOGUE["densenet121-res224-all"]
    message = str(info.value)
    assert (
        entry.url in message
        and str(tmp_path / "xrv" / entry.filename) in message
        and "CHESTXAI_OFFLINE" in message
    )
    assert offline_guard == []


def test_xrv_name_online_miss_downloads_its_release_url(xrv_densenet, tmp_path, monkeypatch) -> None:
    import shutil

    path, reference = xrv_densenet
    monkeypatch.setenv("TORCHXRAYVISION_CACHE_DIR", str(tmp_path / "xrv"))
    monkeypatch.delenv("CHESTXAI_OFFLINE", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: types.SimpleNamespace(close=lambda: None)
    )
    calls = []
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda url, dst, **k: calls.append(url) or shutil.copy(path, dst)
    )
    model = create_model("densenet121", 1, "binary", weights="xrv:densenet121-res224-all")
    assert calls == [X.CATALOGUE["densenet121-res224-all"].url]
    assert (tmp_path / "xrv" / path.name).is_file()
    assert torch.equal(model.backbone.features.conv0.weight, reference.features.conv0.weight)


def test_xrv_weights_of_another_architecture_name_the_right_model(xrv_densenet) -> None:
    path, _ = xrv_densenet
    with pytest.raises(ValueError, match="use it with --model densenet121"):
        create_model("resnet50", 1, "binary", weights=f"xrv:{path}")
    with pytest.raises(ValueError, match="unknown torchxrayvision weights"):
        X.parse("xrv:densenet121-res999")


def test_xrv_resnet50_state_dict_checkpoint_carries_its_normalisation(tmp_path) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(num_classes=18)
    tv.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    path = tmp_path / "resnet50-xrv.pt"
    torch.save(tv.state_dict(), path)  # what torchxrayvision publishes for resnet50-res512-all
    assert X.xrv_preprocess(f"xrv:{path}", "resnet50") == {"size": 512, "mean": 0.5, "std": 1 / 2048}
    ckpt = xrv_checkpoint(f"xrv:{path}")
    save_atomic(ckpt, tmp_path / "checkpoint.pt")
    model, loaded = load_model(tmp_path / "checkpoint.pt")
    assert loaded["preprocess"] == {"size": 512, "mean": 0.5, "std": 1 / 2048}
    assert loaded["label_names"] == list(X.PATHOLOGIES)
    assert torch.equal(model.head.fc.weight, tv.fc.weight) and torch.equal(
        model.backbone.conv1.weight, tv.conv1.weight
    )


def test_training_from_xrv_weights_stores_their_normalisation_in_the_checkpoint(
    xrv_densenet, tmp_path
) -> None:
    """The loop takes torchxrayvision's pixel range (and resolution unless model.input_size is set)
    into checkpoint.pt, so evaluation/explain/predict feed the model what it was trained on."""
    from chestxai.config import load_config
    from chestxai.testing import blob_dataset, write_tiny_cache
    from chestxai.train.loop import train

    path, _ = xrv_densenet
    images, labels, _ = blob_dataset(48, size=32, seed=1)
    cache = write_tiny_cache(
        tmp_path / "blobs",
        images,
        labels,
        ["Blob"],
        "binary",
        split=["train"] * 32 + ["val"] * 8 + ["test"] * 8,
    )
    config = load_config(
        None,
        [f"data.cache_dir={cache}", f"run_dir={tmp_path / 'run'}", "model.name=densenet121",
         f"model.weights=xrv:{path}", "model.input_size=32", "train.epochs=1", "train.batch_size=16",
         "train.max_steps_per_epoch=1", "train.threads=1"],
    )  # fmt: skip
    run = train(config, progress=False)
    _, ckpt = load_model(run / "checkpoint.pt")
    assert ckpt["preprocess"] == {"size": 32, "mean": 0.5, "std": 1 / 2048}


def test_torchvision_style_names_are_mapped_to_timm() -> None:
    weight = torch.zeros(1)
    mapped = X.to_timm_keys(
        {
            "model.layer1.0.conv1.weight": weight,  # the ResNet wrapper's prefix
            "features.denseblock1.denselayer1.norm.1.running_mean": weight,  # torchvision < 0.4 names
            "op_threshs": weight,  # torchxrayvision's calibration buffer, not a network parameter
        }
    )
    assert set(mapped) == {"layer1.0.conv1.weight", "features.denseblock1.denselayer1.norm1.running_mean"}

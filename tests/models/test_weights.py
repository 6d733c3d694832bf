"""Pretrained weights: a local file or an existing cache, adapted to 1 channel, never silently random."""

from __future__ import annotations

import pytest
import timm
import torch

from chestxai.models import create_model


@pytest.fixture(scope="module")
def rgb_resnet18_file(tmp_path_factory):
    """A small 3-channel ImageNet-shaped resnet18 state dict written by the test itself."""
    torch.manual_seed(0)
    reference = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    return path, reference


def test_local_weights_are_loaded_and_adapted_to_grayscale(rgb_resnet18_file) -> None:
    path, reference = rgb_resnet18_file
    model = create_model("resnet18", 1, "binary", weights=path)
    # timm sums the RGB filters of the first convolution into one grayscale filter
    assert torch.allclose(model.backbone.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_missing_weights_file_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_model("resnet18", 1, "binary", weights=tmp_path / "nope.pth")


def test_weights_of_another_architecture_are_rejected(rgb_resnet18_file) -> None:
    path, _ = rgb_resnet18_file
    with pytest.raises(ValueError, match="does not fit densenet121"):
        create_model("densenet121", 1, "binary", weights=path)


def test_pretrained_without_cache_says_where_it_looked(tmp_path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    # offline: a miss would otherwise download (the online path: tests/models/test_pretrained.py)
    monkeypatch.setenv("CHESTXAI_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as info:
        create_model("resnet18", 1, "binary", pretrained=True)
    message = str(info.value)
    assert str(tmp_path / "hf") in message and str(tmp_path / "torch") in message and "--weights" in message


def test_pretrained_found_in_hub_cache(tmp_path, monkeypatch, rgb_resnet18_file) -> None:
    """A copy already in the Hugging Face cache layout is used without any network access."""
    import huggingface_hub.constants
    from safetensors.torch import save_file

    _, reference = rgb_resnet18_file
    hub = tmp_path / "hf"
    repo_id = timm.models.get_pretrained_cfg("resnet18").hf_hub_id
    snapshot = hub / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, snapshot / "model.safetensors")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    model = create_model("resnet18", 1, "binary", pretrained=True)
    assert torch.equal(model.backbone.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)


def test_weights_file_is_read_once(rgb_resnet18_file, monkeypatch) -> None:
    """Issue 8: the --weights file is read once; the same state dict is checked for fit and loaded
    (it used to be unpickled twice: by timm to load, then again to check the fit)."""
    path, reference = rgb_resnet18_file
    real_load = torch.load
    opened = []

    def counting_load(f, *args, **kwargs):
        opened.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    model = create_model("resnet18", 1, "binary", weights=path)
    assert opened == [str(path)]
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_safetensors_weights_are_read_once(tmp_path, rgb_resnet18_file, monkeypatch) -> None:
    import safetensors.torch
    from safetensors.torch import save_file

    _, reference = rgb_resnet18_file
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, path)
    real_load_file, real_safe_open = safetensors.torch.load_file, safetensors.safe_open
    opened = []

    def counting_load_file(f, *args, **kwargs):
        opened.append(str(f))
        return real_load_file(f, *args, **kwargs)

    def counting_safe_open(f, *args, **kwargs):
        opened.append(str(f))
        return real_safe_open(f, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "load_file", counting_load_file)
    monkeypatch.setattr(safetensors, "safe_open", counting_safe_open)
    model = create_model("resnet18", 1, "binary", weights=path)
    assert opened == [str(path)]
    assert torch.equal(model.backbone.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)


def test_a_file_that_is_not_a_state_dict_is_one_clear_error(tmp_path) -> None:
    path = tmp_path / "notes.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="not a state dict"):
        create_model("resnet18", 1, "binary", weights=path)


class _Pickled:  # a class torch's weights_only unpickler refuses to build
    pass


def test_a_pickled_weights_file_is_refused_in_one_line(tmp_path) -> None:
    """Issue 20, item 22: the refusal was torch's six-line message; one line naming the file and the fix."""
    import torch

    from chestxai.models.weights import read_state_dict

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Pickled()}, path)
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "state_dict()" in message
    assert "_Pickled" in message  # the offending global is named

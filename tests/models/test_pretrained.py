"""`pretrained: true` online and offline: the hub cache first, else timm's hub download when the
machine is online, else one clear error at once (no download attempt, no retries)."""

from __future__ import annotations

import socket

import pytest
import timm
import torch
from timm.models import _hub

from chestxai.models import create_model
from chestxai.models.pretrained import PROBE_TIMEOUT_S, WeightsUnavailableError


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return timm.create_model("resnet18", num_classes=1000)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty Hugging Face and torch hub caches, and no offline flags from the environment."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    for name in ("CHESTXAI_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def no_download(monkeypatch):
    """Any download attempt fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    monkeypatch.setattr(_hub, "hf_hub_download", forbidden)
    monkeypatch.setattr(_hub, "download_cached_file", forbidden)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)


class _Connection:
    def close(self) -> None:
        pass


@pytest.mark.parametrize("flag", ["HF_HUB_OFFLINE", "CHESTXAI_OFFLINE"])
def test_offline_flag_miss_is_a_clear_error_without_touching_the_network(
    flag, empty_caches, no_download, monkeypatch
) -> None:
    probes = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: probes.append(a) or _Connection())
    monkeypatch.setenv(flag, "1")
    with pytest.raises(WeightsUnavailableError) as info:
        create_model("resnet18", 1, "binary", pretrained=True)
    message = str(info.value)
    assert f"{flag}=1 is set" in message
    assert "--weights" in message and str(empty_caches / "hf") in message and "--no-pretrained" in message
    assert isinstance(info.value, FileNotFoundError)  # the CLI's one-line user error
    assert probes == []


def test_unreachable_hub_is_one_short_probe_then_a_clear_error(
    empty_caches, no_download, monkeypatch
) -> None:
    probes = []

    def refuse(address, timeout=None, *args, **kwargs):
        probes.append((address, timeout))
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(WeightsUnavailableError, match="did not answer within") as info:
        create_model("resnet18", 1, "binary", pretrained=True)
    assert "huggingface.co:443" in str(info.value)
    assert len(probes) == 1 and probes[0][1] == PROBE_TIMEOUT_S <= 2  # one short connect, no retries


def test_online_miss_downloads_through_timm_hub_and_uses_that_file(
    empty_caches, reference, monkeypatch
) -> None:
    from safetensors.torch import save_file

    served = empty_caches / "served" / "model.safetensors"
    served.parent.mkdir()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, served)
    calls = []

    def fake_hf_hub_download(repo_id, filename, revision=None, **kwargs):
        calls.append((repo_id, filename))
        return str(served)

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: _Connection())
    monkeypatch.setattr(_hub, "hf_hub_download", fake_hf_hub_download)
    model = create_model("resnet18", 1, "binary", pretrained=True)
    repo_id = timm.models.get_pretrained_cfg("resnet18").hf_hub_id
    assert calls == [(repo_id, "model.safetensors")]
    assert torch.equal(model.backbone.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)


def test_online_falls_back_to_the_pickled_file_when_the_repo_has_no_safetensors(
    empty_caches, reference, monkeypatch
) -> None:
    from huggingface_hub.utils import EntryNotFoundError

    served = empty_caches / "pytorch_model.bin"
    torch.save(reference.state_dict(), served)
    calls = []

    def fake_hf_hub_download(repo_id, filename, revision=None, **kwargs):
        calls.append(filename)
        if filename.endswith(".safetensors"):
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(served)

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: _Connection())
    monkeypatch.setattr(_hub, "hf_hub_download", fake_hf_hub_download)
    model = create_model("resnet18", 1, "binary", pretrained=True)
    assert calls == ["model.safetensors", "pytorch_model.bin"]
    assert torch.equal(model.backbone.layer2[1].conv2.weight, reference.layer2[1].conv2.weight)


def test_a_failed_download_says_what_to_do(empty_caches, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ConnectionError("proxy said 407")

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: _Connection())
    monkeypatch.setattr(_hub, "hf_hub_download", broken)
    with pytest.raises(WeightsUnavailableError, match="proxy said 407") as info:
        create_model("resnet18", 1, "binary", pretrained=True)
    assert "--weights" in str(info.value)


def test_train_preflight_fails_offline_before_any_data_is_read(
    empty_caches, no_download, monkeypatch
) -> None:
    from chestxai.config import load_config
    from chestxai.train.loop import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = load_config(
        None, [f"data.cache_dir={empty_caches / 'no-such-cache'}", f"run_dir={empty_caches / 'run'}",
               "model.pretrained=true"],
    )  # fmt: skip
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        train(config, progress=False)
    assert not (empty_caches / "run").exists()


def test_a_cached_copy_is_used_without_any_network_access(
    empty_caches, no_download, reference, monkeypatch
) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("the network was probed although the weights are cached")

    monkeypatch.setattr(socket, "create_connection", no_network)
    cached = (
        empty_caches / "torch" / "checkpoints" / timm.models.get_pretrained_cfg("resnet18").url.split("/")[-1]
    )
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    model = create_model("resnet18", 1, "binary", pretrained=True)
    assert torch.equal(model.backbone.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)

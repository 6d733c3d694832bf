"""Mixed precision is decided by the device's real support (issue 20 item 1).

A recipe's ``train.amp: true`` autocast to bfloat16 on any CPU; on a CPU without native bfloat16
(an AMD EPYC without AVX-512-BF16 or AMX) that is emulated, ~10x slower, and training looked hung
with no message. ``train.amp`` is now auto/on/off (true/false still read), ``devices.choose_precision``
decides, a fallback is a one-line warning naming the flag, and the run records what it trained in.
"""

from __future__ import annotations

import logging

import pytest
import torch
import yaml

from chestxai import devices
from chestxai.config import load_config
from chestxai.errors import UserError
from chestxai.train.loop import train

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("given", "read"),
    [(True, "on"), (False, "off"), ("true", "on"), ("no", "off"), ("auto", "auto"), ("on", "on")],
)
def test_a_recipes_amp_true_false_and_auto_all_read(given, read) -> None:
    assert load_config(None, values={"train.amp": given}).train.amp == read


def test_amp_is_off_by_default_and_a_bad_value_names_the_key() -> None:
    assert load_config(None).train.amp == "off"  # a recipe opts in (auto); small runs stay float32
    with pytest.raises(UserError, match="train.amp must be auto, true or false"):
        load_config(None, ["train.amp=maybe"])


@pytest.mark.parametrize("amp", ["auto", "on", "off"])
def test_a_cpu_without_native_bf16_trains_in_float32(monkeypatch, caplog, amp) -> None:
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="chestxai.devices"):
        chosen = devices.choose_precision(amp, CPU)
    assert chosen.name == "float32" and not chosen.autocast and not chosen.scaler
    warned = [r.getMessage() for r in caplog.records]
    if amp == "on":  # asked for and not given: one line that names the flag, never silently
        assert len(warned) == 1 and "train.amp" in warned[0] and "float32" in warned[0]
    else:
        assert warned == []


def test_a_cpu_with_native_bf16_autocasts_to_bfloat16_unless_off(monkeypatch) -> None:
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.choose_precision("auto", CPU).dtype() is torch.bfloat16
    assert devices.choose_precision("on", CPU).name == "bfloat16"
    assert devices.choose_precision("off", CPU).name == "float32"


def test_cuda_gets_bfloat16_where_supported_else_float16_with_a_scaler(monkeypatch) -> None:
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.choose_precision("auto", gpu).name == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    chosen = devices.choose_precision("auto", gpu)
    assert chosen.name == "float16" and chosen.scaler


def test_a_cuda_gpu_that_only_emulates_bfloat16_gets_float16(monkeypatch) -> None:
    """torch's ``is_bf16_supported()`` says True on a V100/T4 (emulated); only native counts."""
    asked: list[dict] = []

    def supported(including_emulation: bool = True) -> bool:
        asked.append({"including_emulation": including_emulation})
        return including_emulation  # an emulating, pre-Ampere GPU

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    chosen = devices.choose_precision("on", torch.device("cuda", 0))
    assert chosen.name == "float16" and chosen.scaler and asked == [{"including_emulation": False}]


def test_cpu_capability_falls_back_to_cpuinfo_flags(monkeypatch) -> None:
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    monkeypatch.setattr(devices, "_cpuinfo_flags", lambda: {"avx2", "amx_bf16"})
    assert devices.cpu_has_native_bf16()
    monkeypatch.setattr(devices, "_cpuinfo_flags", lambda: {"avx2", "avx512f"})
    assert not devices.cpu_has_native_bf16()


def test_a_recipe_with_amp_true_does_not_autocast_on_a_cpu_without_bf16(
    blob_cache, tmp_path, monkeypatch, capsys
) -> None:
    """The NIH recipes' ``amp: true`` on this kind of CPU: float32 steps, said and recorded."""
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False, raising=False)
    autocasts: list[tuple[object, bool]] = []
    real = torch.autocast

    def spy(device_type, dtype=None, enabled=True, **kw):
        autocasts.append((dtype, enabled))
        return real(device_type, dtype=dtype, enabled=enabled, **kw)

    monkeypatch.setattr(torch, "autocast", spy)
    config = load_config(
        None,
        [f"data.cache_dir={blob_cache}", f"run_dir={tmp_path / 'run'}", "model.name=resnet18",
         "train.epochs=1", "train.batch_size=16", "train.threads=1", "train.amp=true", "train.device=cpu"],
    )  # fmt: skip
    run = train(config, progress=True)
    assert autocasts and not any(enabled for _, enabled in autocasts)  # no (emulated) bf16 step
    saved = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert saved["amp"] == "on" and saved["precision"] == "float32"
    assert "training in float32" in capsys.readouterr().out

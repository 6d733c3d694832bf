"""``train.amp`` (bfloat16 autocast), ``train.channels_last`` and ``train.compile`` (issue 24).

Each knob trains one step on the CPU and must match the float32 eager step: the loss and every
gradient, within the tolerance stated on each test (bfloat16 keeps 8 mantissa bits: 5e-2 of each gradient's norm
relative; channels_last and compile reorder float32 sums only, so ~1e-5). The range checks name the
key and its choices; a real run records both knobs in config.yaml.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from chestxai.config import load_config
from chestxai.devices import COMPILE_CHOICES, Precision
from chestxai.errors import UserError
from chestxai.train.distributed import DistInfo
from chestxai.train.loop import train
from chestxai.train.optimisation import step_input, step_model

CPU = torch.device("cpu")
SINGLE = DistInfo()


def _net() -> torch.nn.Module:
    """The smallest net with what the knobs touch: a convolution, batch norm, a linear head."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1, bias=False),  # batch norm cancels a bias: its gradient is ~0
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2),
    )


def _one_step(values: dict, precision: Precision) -> tuple[float, list[torch.Tensor]]:
    """One training step as the loop takes it (step_model, step_input, autocast, float loss)."""
    cfg = load_config(None, values={"train.device": "cpu", **values}).train
    core = _net()
    model = step_model(core, cfg, SINGLE, CPU)
    gen = torch.Generator().manual_seed(1)
    x = step_input(torch.rand(8, 1, 16, 16, generator=gen), cfg)
    y = (torch.rand(8, 2, generator=gen) > 0.5).float()
    with torch.autocast("cpu", dtype=precision.dtype(), enabled=precision.autocast):
        logits = model(x)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
    loss.backward()
    return loss.item(), [p.grad.detach().clone() for p in core.parameters()]


def _assert_close(got, want, rtol: float) -> None:
    (loss, grads), (loss0, grads0) = got, want
    assert loss == pytest.approx(loss0, rel=rtol)
    for g, g0 in zip(grads, grads0, strict=True):  # relative to each gradient tensor's norm
        assert (g - g0).norm() <= rtol * g0.norm() + 1e-7


FP32 = Precision("float32", "test")


def test_bfloat16_autocast_matches_float32_within_5e_2() -> None:
    _assert_close(_one_step({}, Precision("bfloat16", "test")), _one_step({}, FP32), rtol=5e-2)


def test_channels_last_matches_float32_within_1e_5() -> None:
    cfg = load_config(None, values={"train.channels_last": True}).train
    core = _net()
    step_model(core, cfg, SINGLE, CPU)  # the core itself is converted: validation sees the same weights
    assert core[0].weight.is_contiguous(memory_format=torch.channels_last)
    _assert_close(_one_step({"train.channels_last": True}, FP32), _one_step({}, FP32), rtol=1e-5)


@pytest.mark.slow  # inductor compiles the net's forward and backward with gcc: ~20 s on 2 cores
def test_compile_matches_float32_within_1e_5() -> None:
    _assert_close(_one_step({"train.compile": True}, FP32), _one_step({}, FP32), rtol=1e-5)


@pytest.mark.parametrize(
    ("given", "read"),
    [(True, "default"), (False, "off"), ("false", "off"), ("reduce-overhead", "reduce-overhead"),
     ("max-autotune", "max-autotune"), ("Default", "default")],
)  # fmt: skip
def test_compile_reads_true_false_and_mode_names(given, read) -> None:
    assert load_config(None, values={"train.compile": given}).train.compile == read


def test_compile_and_channels_last_are_off_by_default() -> None:
    cfg = load_config(None).train
    assert cfg.compile == "off" and cfg.channels_last is False
    assert "off" in COMPILE_CHOICES


def test_a_bad_compile_mode_names_the_key_and_the_choices() -> None:
    with pytest.raises(UserError, match=r"train\.compile must be true, false or one of off, default, reduce"):
        load_config(None, ["train.compile=fastest"])


def test_a_bad_channels_last_value_names_the_key() -> None:
    with pytest.raises(UserError, match=r"train\.channels_last"):
        load_config(None, ["train.channels_last=maybe"])


def test_a_run_trains_with_both_knobs_and_records_them(blob_cache, tmp_path, monkeypatch, capsys) -> None:
    """The loop's wiring: the step model is compiled with the recipe's mode (torch.compile spied on:
    the compile itself is the slow test above), inputs and weights are channels_last."""
    modes: list[str] = []
    seen: list[bool] = []

    def spy(model, mode=None, **kw):
        modes.append(mode)
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
        seen.append(all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs))

        class Spied(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = model

            def forward(self, x, **k):
                seen.append(x.is_contiguous(memory_format=torch.channels_last))
                return self.inner(x, **k)

        return Spied()

    monkeypatch.setattr(torch, "compile", spy)
    config = load_config(
        None,
        [f"data.cache_dir={blob_cache}", f"run_dir={tmp_path / 'run'}", "model.name=resnet18",
         "train.epochs=1", "train.batch_size=16", "train.threads=1", "train.device=cpu",
         "train.channels_last=true", "train.compile=max-autotune"],
    )  # fmt: skip
    run = train(config, progress=True)
    assert modes == ["max-autotune"] and seen and all(seen)
    saved = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert saved["channels_last"] is True and saved["compile"] == "max-autotune"
    assert "channels_last, torch.compile mode max-autotune" in capsys.readouterr().out

"""The uncertainty-method registry: every registered method samples a tiny model with the
documented shapes, draws its heatmaps, and is what the CLI, ``predict`` and ``serve`` offer.

Parametrised over the registry, so a new method file is under test the moment it is registered."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from chestxai import cli
from chestxai.models import create_model
from chestxai.serve.models import ServedModel
from chestxai.uncertainty import predict_with_uncertainty
from chestxai.uncertainty.methods import (
    METHODS,
    UncertaintyMethod,
    get_method,
    list_methods,
    single_model_methods,
)
from chestxai.uncertainty.sampler import Sampler

PRE = {"size": 32, "mean": 0.5, "std": 0.25}
MEASURES = ("mean", "std", "entropy", "expected_entropy", "mutual_information", "deterministic")
N_MEMBERS, PASSES, B, L = 2, 3, 2, 3


def _model(p: float = 0.5, seed: int = 0):
    torch.manual_seed(seed)
    return create_model("resnet18", L, "multilabel", dropout=p, input_size=32).eval()


def _x():
    return torch.randn(B, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def _request(name: str) -> dict:
    """What ``predict_with_uncertainty`` takes for method ``name``: one model or the members."""
    if get_method(name).single_model:
        return {"model": _model(), "preprocess": PRE}
    members = [_model(seed=k) for k in range(N_MEMBERS)]
    return {"model": members, "preprocess": [PRE] * N_MEMBERS, "weights": [1 / N_MEMBERS] * N_MEMBERS}


def test_the_registry_holds_the_three_methods_default_first():
    assert list_methods() == ["mc-dropout", "tta", "ensemble"]  # the default, mc-dropout, first
    assert single_model_methods() == ["mc-dropout", "tta"]
    for name in list_methods():
        assert isinstance(get_method(name), UncertaintyMethod) and get_method(name).summary


@pytest.mark.parametrize("name", list_methods())
def test_every_method_samples_with_the_documented_shapes(name):
    method = get_method(name)
    req = _request(name)
    out = predict_with_uncertainty(req.pop("model"), _x(), name, PASSES, seed=3, **req)
    k = PASSES if method.uses_passes else N_MEMBERS
    assert out["samples"].shape == (k, B, L)
    for key in MEASURES:
        assert np.asarray(out[key]).shape == (B, L), key
        assert np.isfinite(out[key]).all(), key
    assert ((out["mean"] >= 0) & (out["mean"] <= 1)).all() and (out["std"] >= 0).all()
    assert set(method.rankings) <= set(out) and "std" in method.rankings
    req = _request(name)
    again = predict_with_uncertainty(req.pop("model"), _x(), name, PASSES, seed=3, **req)
    assert np.array_equal(again["samples"], out["samples"])  # seeded: the same draws


@pytest.mark.parametrize("name", list_methods())
def test_every_method_draws_mean_and_std_heatmaps(name):
    req = _request(name)
    sampler = Sampler(
        name, req["model"], PRE, list("abc"), "multilabel", trained=None,
        weights=req.get("weights"), member_preprocess=req["preprocess"] if "weights" in req else None,
    )  # fmt: skip
    mean, std = get_method(name).cams(sampler, _x(), [0, 1], np.arange(B), 2, 0)
    assert mean.shape == std.shape == (B, 32, 32) and np.isfinite(mean).all() and (std >= 0).all()


@pytest.mark.parametrize("name", list_methods())
def test_a_model_the_method_cannot_sample_is_refused_before_any_forward(name):
    method = get_method(name)
    plain = _model(0.0)
    calls = []
    plain.register_forward_pre_hook(lambda *a: calls.append(1))
    bad = [] if not method.single_model else plain
    reason = method.unavailable(bad)
    if reason is None:  # a method that samples any single model (tta)
        assert method.available(bad)
        return
    assert isinstance(reason, str) and not method.available(bad)
    with pytest.raises(ValueError):
        predict_with_uncertainty(bad, _x(), name, PASSES, preprocess=PRE)
    assert calls == []


def test_an_unknown_method_lists_the_registered_ones():
    with pytest.raises(ValueError, match="did you mean 'mc-dropout'.*ensemble, mc-dropout, tta"):
        predict_with_uncertainty(_model(), _x(), "mc-dropot")


def _choices(argv: list[str], flag: str):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[argv[0]]._actions if flag in a.option_strings)
    return list(action.choices)


def test_the_cli_and_serve_offer_the_registry(capsys):
    assert _choices(["uncertainty"], "--method") == list_methods()
    assert _choices(["predict"], "--uncertainty") == single_model_methods()
    with pytest.raises(SystemExit):
        cli.main(["uncertainty", "--help"])
    assert "mc-dropout, tta, ensemble" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["uncertainty", "RUN", "--method", "bayes"])
    assert exc.value.code == 2 and "choose from 'mc-dropout', 'tta', 'ensemble'" in capsys.readouterr().err
    served = SimpleNamespace(model=_model(0.5))
    assert ServedModel.uncertainty_methods(served) == single_model_methods()
    no_dropout = SimpleNamespace(model=_model(0.0))
    offered = ServedModel.uncertainty_methods(no_dropout)
    assert offered == [n for n in single_model_methods() if get_method(n).available(no_dropout.model)]
    assert "mc-dropout" not in offered and "tta" in offered


def test_a_newly_registered_method_is_offered_everywhere(monkeypatch):
    class Constant(UncertaintyMethod):
        summary = "always 0.5 (a test method)"
        order = 50

        def sample(self, model, x, *, passes, seed, dropout, preprocess, draw_offset, weights):
            samples = np.full((passes, len(x), L), 0.5)
            return {"mean": samples[0], "samples": samples}

    monkeypatch.setitem(METHODS._items, "constant", Constant)
    assert list_methods() == ["mc-dropout", "tta", "ensemble", "constant"]
    assert _choices(["uncertainty"], "--method") == list_methods()
    assert "constant" in _choices(["predict"], "--uncertainty")
    assert "constant" in ServedModel.uncertainty_methods(SimpleNamespace(model=_model(0.0)))
    out = predict_with_uncertainty(_model(), _x(), "constant", 4)
    assert out["samples"].shape == (4, B, L)


@pytest.mark.parametrize("name", list_methods())
def test_every_method_stops_between_passes_when_asked(name):
    """``should_stop`` (the service's cancel, issue 20 item 19): asked between chunks of passes;
    a run that is never stopped gives what it gives without it, and one stopped after its first
    chunk (member) raises SamplingCancelled having run fewer than all the passes (members)."""
    from chestxai.uncertainty.cancel import CANCEL_CHUNK, SamplingCancelled

    req = _request(name)
    passes = 3 * CANCEL_CHUNK
    plain = predict_with_uncertainty(**req, x=_x(), method=name, passes=passes, seed=1)
    asked = predict_with_uncertainty(
        **req, x=_x(), method=name, passes=passes, seed=1, should_stop=lambda: False
    )
    np.testing.assert_allclose(asked["mean"], plain["mean"], atol=1e-6)
    models = req["model"] if isinstance(req["model"], list) else [req["model"]]
    rows: list[int] = []
    hooks = [m.head.register_forward_pre_hook(lambda _m, a: rows.append(len(a[0]))) for m in models]
    calls = iter(range(1000))
    try:
        with pytest.raises(SamplingCancelled):
            predict_with_uncertainty(
                **req, x=_x(), method=name, passes=passes, seed=1, should_stop=lambda: next(calls) >= 1
            )
    finally:
        for h in hooks:
            h.remove()
    total = passes * B if get_method(name).uses_passes else N_MEMBERS * B  # rows at the heads
    assert 0 < sum(rows) < total  # stopped after one chunk of passes (one member), not all

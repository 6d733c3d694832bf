"""Monte Carlo dropout done right: only the dropout modules sample, everything else stays in eval.

``model.train()`` is the classic bug: it also puts batch norm into training mode, so every pass
normalises with the batch's own statistics *and* overwrites the running buffers. Here the model is
put in eval mode and only ``nn.Dropout``-family modules with ``p > 0`` are switched to train mode
(:func:`dropout_active`), and flags (and any inserted layer) are restored afterwards.

Where the dropout sits decides how the passes are batched (:func:`dropout_in_head_only`):

* **only in the head** (chestxai's heads: ``PooledHead``/``PCAMHead`` drop the pooled features,
  timm backbones are built with ``drop_rate=0``): the backbone is deterministic, so the ``N``
  passes of a batch share **one** backbone forward and only the head runs ``N`` times on the
  repeated features; MC dropout then costs little more than one forward;
* **also in the backbone** (a custom backbone with active dropout): the batch is repeated ``N``
  times and the whole model runs on it (chunked), ``N`` forwards' worth of work.

Randomness: the passes are drawn from torch's generator forked and seeded with ``seed``
(``torch.random.fork_rng``), so the same seed gives identical outputs and the caller's RNG state
is untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from chestxai.uncertainty.cancel import StopCheck, check_stop, chunk

log = logging.getLogger(__name__)

#: upper bound on activations held per chunk of repeated passes (floats)
_MAX_ELEMENTS = 1 << 25


def dropout_modules(module: nn.Module, active_only: bool = True) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every dropout layer (``p > 0`` when ``active_only``)."""
    return [
        (name, m)
        for name, m in module.named_modules()
        if isinstance(m, nn.modules.dropout._DropoutNd) and (m.p > 0 or not active_only)
    ]


def _heads(model: nn.Module) -> list[nn.Module]:
    return [h for h in (getattr(model, "head", None), getattr(model, "aux_head", None)) if h is not None]


def dropout_in_head_only(model: nn.Module) -> bool:
    """True when every active dropout layer sits in the head (the backbone is deterministic)."""
    if getattr(model, "head", None) is None or not hasattr(model, "features"):
        return False
    in_heads = {id(m) for h in _heads(model) for _, m in dropout_modules(h)}
    return all(id(m) in in_heads for _, m in dropout_modules(model))


def check_dropout(model: nn.Module, dropout: float | None) -> None:
    """Fail before any work when MC dropout cannot sample: no active dropout and no ``--dropout``."""
    if dropout is not None:
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {dropout}")
        head = getattr(model, "head", None)
        if head is None or not isinstance(getattr(head, "dropout", None), (nn.Identity, nn.Dropout)):
            raise ValueError(
                f"--dropout {dropout}: the model's head ({type(head).__name__}) has no dropout slot to "
                f"insert it into; use --method tta or ensemble instead"
            )
        return
    if not dropout_modules(model):
        cfg = getattr(model, "config", {}) or {}
        raise ValueError(
            f"the model has no active dropout (model.dropout={cfg.get('dropout', 0.0)}): MC dropout would give "
            f"zero uncertainty. Train with model.dropout > 0 (e.g. the pneumoniamnist_resnet18_dropout recipe), "
            f"pass --dropout P to insert dropout at inference (labelled as such in the outputs), or use "
            f"--method tta"
        )


@contextmanager
def dropout_active(model: nn.Module, dropout: float | None = None) -> Iterator[str]:
    """Eval mode with only the dropout layers sampling; yields where the dropout comes from.

    ``dropout`` (``--dropout p``) sets the head's dropout to ``p`` for the duration: an ``Identity``
    slot (a model trained without dropout) gets an ``nn.Dropout(p)`` *inserted at inference*, an
    existing head dropout gets its ``p`` overridden. Everything is restored on exit.
    """
    check_dropout(model, dropout)
    modes = [(m, m.training) for m in model.modules()]
    head = model.head
    old_slot = head.dropout if dropout is not None else None
    old_p = old_slot.p if isinstance(old_slot, nn.Dropout) else None
    try:
        if dropout is None:
            source = "model (trained with dropout)"
        elif isinstance(old_slot, nn.Dropout):
            old_slot.p = float(dropout)
            source = f"overridden at inference: p={float(dropout)} (trained with p={old_p})"
        else:
            head.dropout = nn.Dropout(float(dropout))
            source = f"inserted at inference: p={float(dropout)} (the model was trained without dropout)"
        model.eval()
        for _, m in dropout_modules(model, active_only=False):
            m.train(True)
        yield source
    finally:
        if dropout is not None:
            if old_p is not None:
                old_slot.p = old_p
            else:
                head.dropout = old_slot
        for m, flag in modes:
            m.training = flag


def _chunk(per_pass: int, passes: int) -> int:
    return max(1, min(passes, _MAX_ELEMENTS // max(per_pass, 1)))


@contextmanager
def _dropout_off(model: nn.Module) -> Iterator[None]:
    """Dropout layers in eval for one deterministic forward inside :func:`dropout_active`."""
    layers = [m for _, m in dropout_modules(model, active_only=False)]
    for m in layers:
        m.train(False)
    try:
        yield
    finally:
        for m in layers:
            m.train(True)


def _sample_logits(
    model: nn.Module, x: torch.Tensor, passes: int, should_stop: StopCheck = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(``passes x B x L`` logits with dropout active, ``B x L`` deterministic logits); see the
    module doc for how the passes are batched. ``should_stop`` is asked before each chunk."""
    b = len(x)
    out = []
    if dropout_in_head_only(model):
        # one backbone forward shared by all passes (and the deterministic prediction); only the
        # head samples dropout masks
        feats = model.features(x)
        inp = model.pool(feats) if model.head.consumes == "pooled" else feats
        with _dropout_off(model):
            det = model.head(inp)
        step = chunk(_chunk(inp[0].numel() * b, passes), should_stop)
        for start in range(0, passes, step):
            check_stop(should_stop)
            k = min(step, passes - start)
            rep = inp.repeat(k, *([1] * (inp.ndim - 1)))  # k*B rows, pass-major
            out.append(model.head(rep).view(k, b, -1))
    else:
        # dropout inside the backbone: every pass needs its own full forward
        with _dropout_off(model):
            det = model(x)
        step = chunk(_chunk(x[0].numel() * b * 64, passes), should_stop)  # activations dwarf the input
        for start in range(0, passes, step):
            check_stop(should_stop)
            k = min(step, passes - start)
            out.append(model(x.repeat(k, 1, 1, 1)).view(k, b, -1))
    return torch.cat(out), det


@torch.inference_mode()
def mc_dropout_predict(
    model: nn.Module,
    x: torch.Tensor,
    passes: int = 30,
    seed: int = 0,
    dropout: float | None = None,
    should_stop: StopCheck = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(``passes x B x L`` probabilities of ``passes`` dropout samples for model input ``x``, the
    ``B x L`` deterministic (dropout off) probabilities from the same backbone forward, the dropout
    source (see :func:`dropout_active`))."""
    if int(passes) < 1:
        raise ValueError(f"--passes must be >= 1, got {passes}")
    devices = [x.device] if x.device.type == "cuda" else []
    with dropout_active(model, dropout) as source, torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        logits, det = _sample_logits(model, x, int(passes), should_stop)
        probs = model.probabilities(logits.flatten(0, 1)).view_as(logits)
        det_probs = model.probabilities(det)
    return probs.float(), det_probs.float(), source


def mc_dropout_samples(
    model: nn.Module, x: torch.Tensor, passes: int = 30, seed: int = 0, dropout: float | None = None
) -> tuple[torch.Tensor, str]:
    """``passes x B x L`` dropout-sample probabilities and the dropout source."""
    probs, _, source = mc_dropout_predict(model, x, passes, seed, dropout)
    return probs, source

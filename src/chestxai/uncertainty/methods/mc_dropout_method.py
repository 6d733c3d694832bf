"""Monte Carlo dropout as a registered method: ``passes`` dropout samples of one model.

The sampling itself (only the dropout layers in train mode, head-only batching) is
:mod:`chestxai.uncertainty.mc_dropout`; this class is what the callers look up.
"""

from __future__ import annotations

import numpy as np

from chestxai.uncertainty.heatmaps import mc_dropout_cams
from chestxai.uncertainty.mc_dropout import (
    check_dropout,
    dropout_in_head_only,
    dropout_modules,
    mc_dropout_predict,
)
from chestxai.uncertainty.measures import summarize_samples
from chestxai.uncertainty.methods import METHODS, UncertaintyMethod


@METHODS.register("mc-dropout")
class MCDropout(UncertaintyMethod):
    summary = "dropout layers sample at inference (batch norm stays in eval)"
    takes_dropout = True
    order = 0

    def check(self, model, dropout=None) -> None:
        check_dropout(model, dropout)  # no active dropout and no --dropout: the fix in the message

    def unavailable(self, model) -> str | None:
        if dropout_modules(model):
            return None
        return "has no active dropout (train with model.dropout > 0), so every pass would agree and the std would be 0"

    def sample(self, model, x, *, passes, seed, dropout, preprocess, draw_offset, weights, should_stop=None):
        self.check(model, dropout)
        samples_t, det_t, source = mc_dropout_predict(model, x, passes, seed, dropout, should_stop)
        samples, det = samples_t.cpu().numpy(), det_t.cpu().numpy()
        return {
            **summarize_samples(samples),
            "samples": samples,
            "deterministic": det,
            "dropout_source": np.asarray(source),
        }

    def batching(self, model) -> str:
        if dropout_in_head_only(model):
            return "the N passes share one backbone forward (dropout sits only in the head)"
        return "one forward per pass (dropout inside the backbone)"

    def cams(self, sampler, x, labels, draws, passes, seed):
        return mc_dropout_cams(sampler.model, x, labels, passes, seed, sampler.dropout)

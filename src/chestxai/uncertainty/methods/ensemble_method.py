"""An ensemble as a registered method: one sample per member, averaged with the member weights.

The members come from an ensemble run (``ensemble.json``) or from several runs given together;
:class:`~chestxai.models.trained_run.TrainedRun` opens them and checks that they agree.
"""

from __future__ import annotations

import numpy as np
import torch

from chestxai.models.trained_run import TrainedRun
from chestxai.uncertainty.cancel import check_stop
from chestxai.uncertainty.forward import deterministic, member_inputs
from chestxai.uncertainty.heatmaps import ensemble_cams
from chestxai.uncertainty.measures import summarize_samples
from chestxai.uncertainty.methods import METHODS, UncertaintyMethod
from chestxai.uncertainty.sampler import Sampler


@METHODS.register("ensemble")
class Ensemble(UncertaintyMethod):
    summary = "one prediction per member of an ensemble (or of several runs given together)"
    single_model = False
    uses_passes = False
    order = 2

    def unavailable(self, model) -> str | None:
        if isinstance(model, (list, tuple)) and model:
            return None
        return "is one model; an ensemble needs a sequence of models (the ensemble's members)"

    def check(self, model, dropout=None) -> None:
        if not self.available(model):
            raise ValueError("method 'ensemble' needs a sequence of models (the ensemble's members)")

    def sample(self, model, x, *, passes, seed, dropout, preprocess, draw_offset, weights, should_stop=None):
        self.check(model)
        models = list(model)
        inputs = member_inputs(x, preprocess, len(models))
        rows = []
        with torch.inference_mode():
            for m, xi in zip(models, inputs, strict=True):
                check_stop(should_stop)  # between members, as the others between passes
                rows.append(deterministic(m, xi))
        samples = np.stack(rows)
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        return {**summarize_samples(samples, w), "samples": samples, "deterministic": samples[0]}

    def open(self, name, run, device, members, dropout) -> Sampler:
        if not members and not run.is_ensemble:
            raise ValueError(
                f"--method ensemble needs several models: {run.root} is not an ensemble run (no ensemble.json); "
                f"give more runs (`chestxai uncertainty {run.root} RUN2 RUN3 --method ensemble`) or build one "
                f"with `chestxai ensemble`"
            )
        trained = TrainedRun.open(run, device, members, one_input_size=True)  # compared pixel for pixel
        source = "runs given on the command line" if members else str(run.ensemble)
        return Sampler(
            name, trained.models, trained.preprocess, trained.label_names, trained.task, trained,
            list(trained.weights), members=[str(m.run.root) for m in trained.members],
            member_preprocess=[dict(m.preprocess) for m in trained.members],
            batching=f"one forward per member ({len(trained.members)} members, {source})",
        )  # fmt: skip

    def cams(self, sampler, x, labels, draws, passes, seed):
        return ensemble_cams(sampler.model, x, labels, sampler.weights, preprocess=sampler.member_preprocess)

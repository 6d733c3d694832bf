"""Test-time augmentation as a registered method: ``passes`` augmented views of each image.

The views (training's augmentation family, keyed by the image's position) are
:mod:`chestxai.uncertainty.tta`. View disagreement is not model uncertainty, so the stage does
not rank by TTA's "mutual information".
"""

from __future__ import annotations

from chestxai.uncertainty.forward import deterministic
from chestxai.uncertainty.heatmaps import tta_cams
from chestxai.uncertainty.measures import summarize_samples
from chestxai.uncertainty.methods import METHODS, UncertaintyMethod
from chestxai.uncertainty.tta import tta_samples


@METHODS.register("tta")
class TTA(UncertaintyMethod):
    summary = "the model on augmented views of each image (training's augmentations, seeded)"
    rankings = ("std", "entropy")
    order = 1

    def sample(self, model, x, *, passes, seed, dropout, preprocess, draw_offset, weights, should_stop=None):
        if preprocess is None:
            raise ValueError(
                "method 'tta' needs preprocess= (the checkpoint's {'size', 'mean', 'std'}) to undo the "
                "normalisation of x before augmenting"
            )
        samples = tta_samples(model, x, preprocess, passes, seed, draw_offset, should_stop=should_stop)
        samples = samples.cpu().numpy()
        return {**summarize_samples(samples), "samples": samples, "deterministic": deterministic(model, x)}

    def batching(self, model) -> str:
        return "one forward per pass (view)"

    def cams(self, sampler, x, labels, draws, passes, seed):
        return tta_cams(sampler.model, x, sampler.preprocess, labels, passes, seed, draws=draws)

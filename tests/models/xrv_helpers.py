"""What the torchxrayvision tests share: weights made distinctive, so a mis-mapped tensor shows, and
the published classifier built straight from a weights file (the reference the tests compare
torchxrayvision's forward and a checkpoint round trip against; production runs of the published
classifier go through ``train.epochs: 0`` and ``model.published_head``)."""

from __future__ import annotations

import torch
from torch import nn

from chestxai.models.checkpoint import make_checkpoint
from chestxai.models.factory import build_classifier
from chestxai.models.xrv import MEAN, NATIVE_SIZE, STD, read_xrv_state


def randomise_statistics(model: nn.Module, linear_bias: bool = False) -> nn.Module:
    """Non-trivial batch-norm running statistics and scales (and, with ``linear_bias``, classifier
    biases) drawn from a fixed seed; returns ``model``."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 1.5, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
        elif linear_bias and isinstance(m, nn.Linear):
            m.bias.data.uniform_(-2, 2, generator=gen)
    return model


def xrv_classifier(weights: str, input_size: int = 0):
    """The published classifier as it is: (model, label names, preprocess, thresholds).

    Only the outputs these weights learnt are kept (torchxrayvision's non-empty ``targets``: 18
    for the ``all`` models, e.g. 2 for ``densenet121-res224-rsna``), so an untrained output never
    reaches metrics or heatmaps. Our model returns logits; torchxrayvision's ``op_norm`` maps each
    output's operating point to 0.5, which is the same decision as thresholding our sigmoid at
    ``op_threshs`` (returned as the thresholds; 0.5 where the weights state none). The file is
    read once.
    """
    xs = read_xrv_state(weights)
    keep = [i for i, name in enumerate(xs.labels) if name]
    size = input_size or NATIVE_SIZE[xs.arch]
    preprocess = {"size": int(size), "mean": MEAN, "std": STD}
    model = build_classifier(
        xs.arch, len(keep), "multilabel", input_size=size, state=xs.state, source=xs.file
    )
    xs.load_rows(model.head.fc, keep)
    model.eval()
    names = [xs.labels[i] for i in keep]
    return model, names, preprocess, {xs.labels[i]: xs.operating_point(i) for i in keep}


def xrv_checkpoint(weights: str, input_size: int = 0) -> dict:
    """A chestxai checkpoint dict of the published classifier (what ``load_model`` rebuilds), so
    that the explain/evaluate/serve stages can use torchxrayvision's model directly."""
    model, names, preprocess, thresholds = xrv_classifier(weights, input_size)
    return make_checkpoint(
        model, names, preprocess, config={"model": {"weights": weights}}, thresholds=thresholds
    )

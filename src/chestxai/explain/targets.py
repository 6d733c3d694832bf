"""What an explanation explains: a finding name -> an output index -> a pytorch-grad-cam target.

Heatmaps explain the **logit** of the named finding, for every task:

* multi-label: logit ``k`` (its sigmoid is the finding's probability);
* multi-class: logit ``k`` before the softmax (pytorch-grad-cam's convention: explaining the
  softmax output would mix in every other class's evidence);
* binary (one output logit): the logit itself. ``ClassifierOutputTarget(0)`` returns
  ``output[0]`` for a 1-D per-sample output, i.e. the logit; ``BinaryClassifierOutputTarget(1)``
  would return the same value as a 1-element tensor (and ``(0)`` its negation, the evidence for
  "absent"). We use the first for every task so there is one code path.

Faithfulness metrics (deletion/insertion, ROAD) score the logit too by default (a saturated
probability does not move when evidence is removed; :mod:`chestxai.explain.faithfulness`);
:class:`ProbabilityTarget` scores the probability when asked to.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from chestxai.registry import UnknownNameError


class UnknownFindingError(UnknownNameError):
    """A finding the model has no output for; the message lists the model's findings."""


def finding_index(label_names: Sequence[str], finding: str) -> int:
    """Position of ``finding`` among the model's outputs (case-insensitive), with a helpful error."""
    names = list(label_names)
    if finding in names:
        return names.index(finding)
    lowered = [n.lower() for n in names]
    if finding.lower() in lowered:
        return lowered.index(finding.lower())
    raise UnknownFindingError(
        f"the model has no output for finding {finding!r}; it explains: {', '.join(names)}. "
        f"Pass one of these with --finding (or train a model with that label)."
    )


def logit_targets(indices: Sequence[int]) -> list[ClassifierOutputTarget]:
    """One pytorch-grad-cam target per image: the logit of output ``indices[i]``."""
    return [ClassifierOutputTarget(int(i)) for i in indices]


class ProbabilityTarget:
    """Probability of output ``category`` from one image's logits (sigmoid, or softmax for multi-class).

    Same call convention as pytorch-grad-cam's targets (a 1-D per-image output, or a batch).
    """

    def __init__(self, category: int, multiclass: bool):
        self.category = int(category)
        self.multiclass = bool(multiclass)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        if self.multiclass:
            return torch.softmax(model_output, dim=-1)[..., self.category]
        return torch.sigmoid(model_output[..., self.category])


def probability_targets(indices: Sequence[int], task: str) -> list[ProbabilityTarget]:
    return [ProbabilityTarget(i, task == "multiclass") for i in indices]

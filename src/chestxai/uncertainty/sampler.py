"""What the uncertainty stage samples with: the opened model(s) and what the method needs of them.

Built by a method's ``open`` hook (:mod:`.methods`), read by the stage (:mod:`.stage`) and the
gallery (:mod:`.gallery_select`); a module of its own so the methods and the stage share it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chestxai.models.trained_run import TrainedRun


@dataclass
class Sampler:
    """What draws the samples: one model (mc-dropout, tta) or the members (ensemble)."""

    method: str
    model: object  # a ChestClassifier, or a list of them
    preprocess: dict
    label_names: list[str]
    task: str
    trained: TrainedRun  # the run (an ensemble's members, or run directories given together)
    weights: list[float] | None = None
    member_preprocess: list[dict] | None = None  # ensemble: each member's own normalisation
    dropout: float | None = None
    members: list[str] = field(default_factory=list)
    batching: str = ""

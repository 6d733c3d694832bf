"""The uncertainty-method registry: method name -> an :class:`UncertaintyMethod`.

Like the explainers (:mod:`chestxai.explain.methods`), each method is one class in its own module
of this package, registered with ``@METHODS.register("name")``; the package's modules are imported
on the first lookup. The callers - :func:`~chestxai.uncertainty.api.predict_with_uncertainty`, the
stage, its gallery, ``serve``, ``predict`` and the CLI - look a method up and call its hooks, so
none of them branches on a method's name and a new method is one file (plus its test);
``tests/uncertainty/test_methods.py`` puts every registered method under test automatically.

What is particular to a method stays in its class:

* ``check`` - refuse a model the method cannot sample (ValueError naming the fix), before any
  forward; ``unavailable`` / ``available`` ask it of the model as it is, without raising (what
  ``serve`` and ``predict`` offer);
* ``sample`` - draw the samples for model input ``x`` and summarise them (the measures of
  :mod:`chestxai.uncertainty.measures`, plus ``samples`` ``K x B x L`` and ``deterministic``),
  asking the optional ``should_stop`` between chunks of passes (:mod:`chestxai.uncertainty.cancel`);
* ``open`` - open the run's model(s) for the stage (a :class:`~chestxai.uncertainty.sampler.Sampler`);
  ``batching`` says how its forwards are batched (recorded in ``uncertainty.json``);
* ``cams`` - mean and std Grad-CAM over the method's samples (the stage's gallery);
* class attributes - ``summary``; ``rankings`` (the per-image measures the stage ranks by);
  ``single_model`` (samples one model: ``serve`` and ``predict`` offer it; else it takes an
  ensemble's members); ``uses_passes`` (draws ``--passes`` samples, else one per member);
  ``takes_dropout`` (``--dropout`` applies, and the dropout source is recorded); ``order`` (where
  it is listed: the default, mc-dropout, first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from chestxai.errors import UserError
from chestxai.models.trained_run import TrainedRun
from chestxai.registry import Registry, UnknownNameError
from chestxai.uncertainty.sampler import Sampler


@dataclass(frozen=True)
class UncertaintyMethod:
    """Base class of an uncertainty method (see the module doc). Subclasses override ``sample``
    and ``cams``, and ``check``/``open``/``batching`` where the default does not fit."""

    summary: ClassVar[str] = ""
    rankings: ClassVar[tuple[str, ...]] = ("std", "entropy", "mutual_information")
    single_model: ClassVar[bool] = True
    uses_passes: ClassVar[bool] = True
    takes_dropout: ClassVar[bool] = False
    order: ClassVar[int] = 100

    def check(self, model, dropout: float | None = None) -> None:
        """Raise ValueError (naming the fix) when the method cannot sample ``model``."""

    def unavailable(self, model) -> str | None:
        """Why the method cannot sample ``model`` as it is (nothing inserted at inference), worded
        to follow the run's path (``serve``/``predict`` messages); None when it can."""
        return None

    def available(self, model) -> bool:
        return self.unavailable(model) is None

    def sample(
        self,
        model,
        x: torch.Tensor,
        *,
        passes: int,
        seed: int,
        dropout: float | None,
        preprocess,
        draw_offset: int,
        weights: Sequence[float] | None,
        should_stop=None,
    ) -> dict[str, np.ndarray]:  # pragma: no cover - the hook
        raise NotImplementedError

    def batching(self, model) -> str:
        """How the stage's forwards are batched, in words (recorded in ``uncertainty.json``)."""
        return "one forward per pass"

    def open(
        self, name: str, run, device: str, members: Sequence[str | Path], dropout: float | None
    ) -> Sampler:
        """The run's one model, checked (``members`` are refused by the stage before this)."""
        trained = TrainedRun.open(run, device, single=True)
        model = trained.model
        self.check(model, dropout)
        return Sampler(
            name, model, trained.preprocess, trained.label_names, trained.task, trained,
            dropout=dropout, batching=self.batching(model),
        )  # fmt: skip

    def cams(
        self, sampler: Sampler, x: torch.Tensor, labels: list[int], draws: np.ndarray, passes: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - the hook
        raise NotImplementedError


METHODS: Registry[type[UncertaintyMethod]] = Registry("uncertainty method", package=__name__)


def list_methods() -> list[str]:
    """Every registered method, the default first (the order the CLI and the report list them)."""
    return sorted(METHODS.names(), key=lambda n: (METHODS.get(n).order, n))


def single_model_methods() -> list[str]:
    """The methods that sample one model: what ``predict --uncertainty`` and ``serve`` offer."""
    return [n for n in list_methods() if METHODS.get(n).single_model]


def get_method(name: str) -> UncertaintyMethod:
    """Method ``name``; an unknown name is a UserError listing the registered ones."""
    try:
        return METHODS.get(name)()
    except UnknownNameError as exc:
        raise UserError(f"{exc}; choose --method from {', '.join(list_methods())}") from None


def check_method(name: str, passes: int) -> UncertaintyMethod:
    """Method ``name``, with ``passes`` checked when the method draws passes."""
    method = get_method(name)
    if method.uses_passes and (not isinstance(passes, int) or passes < 1):
        raise ValueError(f"--passes must be a whole number >= 1, got {passes!r}")
    return method

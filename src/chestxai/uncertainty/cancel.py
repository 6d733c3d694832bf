"""Stopping a sampling run between passes: the optional ``should_stop`` callback of
:func:`chestxai.uncertainty.predict_with_uncertainty` and the methods' loops.

A module of its own (no torch) so the loops of :mod:`.mc_dropout` and :mod:`.tta` and the
service share it without importing each other. A caller that can give up on the answer (the
HTTP service when a request runs out of time) passes ``should_stop``; the loops ask it before each
chunk of passes and raise :class:`SamplingCancelled`, so the remaining forwards are not run.
"""

from __future__ import annotations

from collections.abc import Callable

#: passes per forward when a caller may cancel: how late a cancel can be noticed
CANCEL_CHUNK = 8

StopCheck = Callable[[], bool] | None


class SamplingCancelled(RuntimeError):
    """``should_stop()`` said yes between passes: the remaining passes were not run."""


def check_stop(should_stop: StopCheck) -> None:
    """Raise :class:`SamplingCancelled` when the optional ``should_stop`` callback says so."""
    if should_stop is not None and should_stop():
        raise SamplingCancelled("sampling stopped between passes: the caller cancelled it")


def chunk(step: int, should_stop: StopCheck) -> int:
    """Passes per forward: ``step``, or at most :data:`CANCEL_CHUNK` when the run may be cancelled."""
    return min(step, CANCEL_CHUNK) if should_stop is not None else step

"""Uncertainty you can act on: Monte Carlo dropout, test-time augmentation and ensembles, and the
analysis that decides which cases a radiologist must see (referral curves, risk-coverage).

Layered like the rest of chestxai: pure functions over arrays first (:mod:`.measures`,
:mod:`.referral`, :mod:`.risk_coverage`), then samplers over a model (:mod:`.mc_dropout`,
:mod:`.tta`, the members of an ensemble), registered as methods in :mod:`.methods` (one module
each: ``list_methods()``) behind one call (:func:`predict_with_uncertainty`, also used by the
service), and last the stage that reads a run directory and writes ``RUN/uncertainty/<method>/``
(:mod:`.stage`). Importing this package does not import matplotlib.
"""

from chestxai.uncertainty.api import predict_with_uncertainty
from chestxai.uncertainty.measures import summarize_samples
from chestxai.uncertainty.methods import list_methods
from chestxai.uncertainty.referral import referral_analysis, referral_curve
from chestxai.uncertainty.risk_coverage import augrc, aurc, risk_coverage_curve

__all__ = [
    "aurc",
    "augrc",
    "list_methods",
    "predict_with_uncertainty",
    "referral_analysis",
    "referral_curve",
    "risk_coverage_curve",
    "summarize_samples",
]

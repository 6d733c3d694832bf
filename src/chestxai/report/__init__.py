"""Run reports: one self-contained HTML page per run (:func:`build_report`)."""

from chestxai.report.build import build_report

__all__ = ["build_report"]

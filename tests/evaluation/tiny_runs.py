"""Tiny run directories for evaluation and report tests (now in :mod:`chestxai.testing`)."""

from chestxai.testing import (  # noqa: F401  (re-exported for the tests of this folder)
    NIH14,
    SPLIT_CYCLE,
    label_names_for,
    tiny_labels,
    write_tiny_cache,
    write_tiny_run,
)

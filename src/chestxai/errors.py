"""The error types chestxai raises on purpose, so the CLI can tell a user's mistake from a bug.

``UserError`` is for input the user can fix (a bad flag value, a missing file, a run folder that
is not a run): ``chestxai`` prints its message as one line and exits 2. Anything else - a
``TypeError`` or ``AttributeError`` - is a programming error and keeps its traceback, because
hiding it behind one line would hide where the bug is. ``UserError`` subclasses ``ValueError`` so
that callers written against the older ``except ValueError`` keep working.
"""

from __future__ import annotations


class ChestXaiError(Exception):
    """Base of every error chestxai raises deliberately (``except ChestXaiError`` catches them all)."""


class UserError(ChestXaiError, ValueError):
    """Input the user can correct; the message names the flag or file and the fix."""

"""Which paths may be opened as image files: regular files only, checked without opening them.

Opening a FIFO blocks until a writer appears (forever, in ``prepare``'s workers or ``predict``),
and a character device such as ``/dev/zero`` or ``/dev/urandom`` never ends. So every place that
lists files to decode (the readers' walker, ``prepare``'s workers, ``predict``'s inputs) asks
:func:`not_regular` first, which only ``stat``\\ s the path (after following symlinks), and lists
whatever it refuses as skipped with the reason it returns, e.g. ``not a regular file: fifo``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISFIFO, "fifo (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)
MISSING = "file not found"
FOLDER = "is a folder, not a file"


def not_regular(path: str | Path) -> str:
    """``""`` when ``path`` (links followed) is a regular file, else why it must not be opened.

    Reasons: ``not a regular file: fifo (named pipe)`` (or character device, block device,
    socket), ``is a folder, not a file``, ``dangling symlink to TARGET``, ``symlink loop``,
    ``file not found`` (:data:`MISSING`), or the ``stat`` error. Never opens ``path``.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"dangling symlink to {os.readlink(path)}"
        return MISSING
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        return f"cannot stat: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return FOLDER
    for test, name in _KINDS:
        if test(mode):
            return f"not a regular file: {name}"
    return "not a regular file"

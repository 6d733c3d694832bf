"""Exclusive locks on a run directory or a prepared cache, so two processes never write one.

``fcntl.flock`` on a ``.lock`` file inside the folder: the kernel drops the lock when the holder
exits, however it exits (Ctrl-C, SIGKILL, OOM), so a crashed run never leaves a stale lock that a
user has to delete by hand. A second process asking for the same lock fails at once with a
message naming the folder and the holder's pid, instead of waiting or writing a mixed folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".lock"


class LockedError(FileExistsError):
    """Another process holds the lock (a FileExistsError so the CLI prints it as one line)."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text else ""


@contextlib.contextmanager
def exclusive(folder: str | Path, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the ``with`` block.

    ``what`` names the folder in the error ("run directory", "prepared cache"). Re-entrant within
    one process is *not* supported: nested ``exclusive`` on the same folder fails like a second
    process would, which catches accidental double-opens in tests.
    """
    import fcntl  # POSIX only; imported here so that importing chestxai never fails on Windows

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise LockedError(
                f"{what} {folder} is in use by another process{_holder(path)}; wait for it to finish, "
                f"or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield path
    finally:
        os.close(fd)  # closing releases the flock


def is_locked(folder: str | Path) -> bool:
    """True while another process holds ``exclusive(folder)`` (e.g. a run that is still training)."""
    import fcntl

    path = Path(folder) / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False

"""Atomic file writes: write beside the target, then rename, so readers never see half a file.

A killed training run or explanation job leaves either the old file or the new one, never a
truncated checkpoint. Temporary files from ``mkstemp`` are private (mode 0600); the result gets
the permissions a plain ``open()`` would have given (0666 minus the umask), so a shared machine's
other users can read runs as usual. Output folders (``uncertainty``'s) and groups of files
(``compare``'s) are written in a staging folder and renamed into place (:func:`atomic_dir`), so a
killed command leaves nothing that blocks its re-run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a staging or temporary folder named by it is not stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(path: str | Path) -> None:
    """Remove the staging folders a killed writer of ``path`` left beside it (``.NAME.PID.*.tmp``
    whose PID is gone), so a kill costs disk space only until the next run."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for entry in path.parent.glob(f".{path.name}.*.tmp"):
        pid = entry.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def staging_dir(path: str | Path) -> Path:
    """A new private folder beside ``path`` named ``.NAME.PID.XXXX.tmp`` (what :func:`remove_stale` clears)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"))


@contextlib.contextmanager
def atomic_dir(path: str | Path, merge: bool = False) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success it becomes ``path``, on error it is removed.

    A killed writer leaves only a hidden staging folder (never a half-written ``path`` that a
    re-run would refuse as someone else's), cleared by the next writer. The old ``path`` is
    replaced whole; ``merge`` keeps the old folder and moves the new entries into it instead
    (each replacing the entry of the same name), for ``--force`` into a folder with other files."""
    path = Path(path)
    tmp = staging_dir(path)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if merge and path.is_dir():
            for entry in sorted(tmp.iterdir()):
                target = path / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(entry, target)
            tmp.rmdir()
        elif path.exists():
            old = Path(f"{tmp}.old.tmp")  # same PID prefix: a kill between the renames is cleared too
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

"""No silent overwrites: checks a command makes before it writes.

A command may replace a file *it* wrote before (a re-run), never a file it did not write (a
checkpoint, someone's notes) unless the user passes ``--force``; it does not write into a run
that is still training. Each check raises a FileExistsError naming the file and the flag, which
the CLI prints as one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chestxai.locks import is_locked
from chestxai.rundir.layout import RunDir


def check_overwrite(
    path: str | Path,
    force: bool,
    ours: Callable[[Path], bool] | None = None,
    what: str = "file",
) -> Path:
    """Refuse to replace ``path`` unless ``force``, it does not exist, or ``ours(path)`` says this
    command wrote it (e.g. a marker inside). Directories are never replaced by a file."""
    path = Path(path)
    if path.is_dir():
        raise FileExistsError(f"{path} is a directory; choose a file name for the {what}")
    if force or not path.exists():
        return path
    if ours is not None and ours(path):
        return path
    if ours is None:  # nothing to tell this command's files by: say only what is known
        raise FileExistsError(f"{path} exists; choose another path or pass --force to replace it")
    raise FileExistsError(
        f"{path} exists and was not written by this command; choose another path or pass --force to replace it"
    )


def check_output_dir(path: str | Path, force: bool, flag: str = "--out") -> Path:
    """An output folder must be new or empty (``force`` allows writing into a non-empty one)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{flag} {path} is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise FileExistsError(
            f"{flag} {path} is not empty; choose a new folder or pass --force to write into it"
        )
    return path


def check_not_training(run: RunDir, force: bool, action: str) -> None:
    """Refuse to ``action`` while a training process holds the run's lock (its checkpoint is
    still changing, so the numbers would belong to an early epoch)."""
    if is_locked(run.root) and not force:
        raise FileExistsError(
            f"{run.root} is still training (locked by another process); wait for training to finish before "
            f"you {action}, or pass --force to {action} the current checkpoint anyway"
        )


def refuse_while_training(run_dir: str | Path, action: str) -> None:
    """The one check ``export``, ``predict``, ``explain``, ``report`` and ``serve`` make before
    reading a run: refuse while a training process holds its lock (its checkpoint may change under
    them, and ``explain`` would write into a run that is still being written)."""
    root = Path(run_dir)
    if root.is_dir() and is_locked(root):
        raise FileExistsError(
            f"{root} is still training (its lock is held by another process); wait for training to "
            f"finish before you {action}"
        )


def has_marker(marker: str, head_bytes: int = 4096) -> Callable[[Path], bool]:
    """A predicate for :func:`check_overwrite`: the file starts with (within ``head_bytes``) ``marker``."""

    def ours(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                return marker.encode() in f.read(head_bytes)
        except OSError:
            return False

    return ours

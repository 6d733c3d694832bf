"""Who runs which trial: a study-wide mutex and one lock per running trial.

Optuna's journal storage has no heartbeat, so a trial whose process was killed stays RUNNING in
the journal forever. Each process therefore holds an exclusive lock on ``.claims/trial-NNNN/``
for as long as it runs trial NNNN (:func:`chestxai.locks.exclusive`: the kernel drops it however
the process dies). Asking Optuna for a trial and claiming it happen under the study mutex, and so
does the sweep for dead trials, so a sweep never sees a trial between "asked" and "claimed": a
RUNNING trial whose claim folder exists and is not locked belongs to a dead process.

Processes on several machines share a study through a shared folder (NFS and the like, where
``flock`` works); a trial whose claim folder is not visible here (another machine's folder, with
an RDB storage) is never judged from here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from chestxai.locks import is_locked
from chestxai.rundir import StudyDir


@contextlib.contextmanager
def study_mutex(study: StudyDir) -> Iterator[None]:
    """Hold the study's mutex (blocking: other processes wait their turn, for seconds at most,
    except while the first one prepares the dataset cache)."""
    import fcntl

    study.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(study.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def claim_state(study: StudyDir, number: int) -> bool | None:
    """True: a live process holds trial ``number``; False: its process died; None: not claimed
    from a folder visible here (nothing can be said)."""
    folder = study.claim(number)
    if not folder.is_dir():
        return None
    return is_locked(folder)

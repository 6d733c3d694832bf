"""A FIFO that proves it was never opened, and that cannot hang a test on code that opens it.

``FifoGuard(path)`` makes a named pipe and, in a thread, keeps trying to open its *write* end
without blocking (``O_NONBLOCK``: ``ENXIO`` while no reader has it open). Code under test that
opens the FIFO for reading would block until a writer comes; the guard is that writer: it opens
and closes at once, so the reader sees end-of-file instead of hanging forever, and ``opened``
records that the FIFO was opened. A fixed reader never opens it: ``opened`` stays False.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path


class FifoGuard:
    def __init__(self, path: Path, delay: float = 0.05) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.path)
        self.opened = False
        self._stop = threading.Event()
        self._delay = delay
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT):
                    raise
                time.sleep(self._delay)
                continue
            self.opened = True  # someone is reading the FIFO: give them EOF so they do not hang
            os.close(fd)
            time.sleep(self._delay)

    def __enter__(self) -> FifoGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

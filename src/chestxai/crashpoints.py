"""Named crash points for reliability tests: ``CHESTXAI_CRASH_AT=name`` kills the process there.

Every place where a kill could leave a run or cache half-written calls ``crash_point("name")``
(e.g. ``"train:after-last"``). Unset (always, outside tests) it costs one dictionary lookup. Set,
the process dies at once with ``os._exit(137)`` -- no ``finally`` blocks, no flushing, the same
as SIGKILL -- so a test can prove that every such point leaves a resumable or restartable state.
``CHESTXAI_CRASH_AT=name@3`` dies at the third time the point is reached.
"""

from __future__ import annotations

import os

ENV = "CHESTXAI_CRASH_AT"
_seen: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os._exit(137)

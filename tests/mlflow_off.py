"""MLflow is off in the tests, here and only here (a plugin of ``tests/conftest.py``).

Tracking is beside the point of almost every test, and MLflow is slow to start (a SQLite store is
created and migrated for every runs folder), so the whole session runs with ``mlflow`` hidden: the
library then tracks to the run directory only, as it does where MLflow is not installed. That
includes module- and session-scoped fixtures that train, because the hiding is session-scoped.

* ``@pytest.mark.real_mlflow``: the test sees the real MLflow (the tests of tracking itself).
* :data:`DRIVER_PREAMBLE`: the first line of a ``python -c`` driver that should run without
  MLflow too. A plain ``python -m chestxai`` subprocess keeps MLflow (a test may be about it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

DRIVER_PREAMBLE = 'import sys; sys.modules["mlflow"] = None  # MLflow off (tests/mlflow_off.py)\n'
#: the real ``mlflow`` module once a ``real_mlflow`` test imported it: imported again after being
#: deleted, it would be a second module whose submodules (``mlflow.utils``...) stay the first's
_real: dict[str, ModuleType] = {}


@pytest.fixture(scope="session", autouse=True)
def _mlflow_hidden() -> Iterator[None]:
    if isinstance(sys.modules.get("mlflow"), ModuleType):  # imported before the session started
        _real["mlflow"] = sys.modules["mlflow"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "mlflow", None)
        yield


@pytest.fixture(autouse=True)
def _mlflow_for_marked_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give a ``real_mlflow`` test the real module back (hidden again after it).

    Its own MonkeyPatch, not the ``monkeypatch`` fixture: an autouse fixture that requested it would
    set it up before every test's ``tmp_path`` and so undo a test's patches only after ``tmp_path``'s
    clean-up ran under them."""
    if request.node.get_closest_marker("real_mlflow") is None:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        if "mlflow" in _real:
            mp.setitem(sys.modules, "mlflow", _real["mlflow"])
        else:
            mp.delitem(sys.modules, "mlflow", raising=False)
        yield
        if isinstance(sys.modules.get("mlflow"), ModuleType):
            _real["mlflow"] = sys.modules["mlflow"]

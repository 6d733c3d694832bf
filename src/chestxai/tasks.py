"""The three prediction tasks, defined once for every layer (data, models, evaluation, config).

* ``binary``: one label, a sigmoid probability of the positive class.
* ``multiclass``: one-hot rows, softmax probabilities, the decision is the argmax.
* ``multilabel``: independent sigmoids; NaN targets (unknown) are masked per finding.
"""

from __future__ import annotations

TASKS = ("binary", "multiclass", "multilabel")


def check_task(task: str, where: str = "task") -> str:
    """``task`` if it is one of :data:`TASKS`, else a ValueError naming ``where`` and the choices."""
    if task not in TASKS:
        raise ValueError(f"unknown {where} {task!r}; choose one of {', '.join(TASKS)}")
    return task

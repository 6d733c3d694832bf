"""The training loop stays readable in one sitting (issue 19): ``_fit`` is the outline (data ->
model -> epochs) and its parts live in their own small modules, so a new branch has to go where
its kind of work already is instead of regrowing the loop."""

from __future__ import annotations

import inspect

import chestxai.models.recipe
import chestxai.train.epoch_end
import chestxai.train.loop
import chestxai.train.optimisation
from chestxai.train.loop import _fit

MAX_FIT_LINES = 110  # nanoGPT's whole loop is ~120 lines; _fit was 231 with a 60-line closure
MAX_MODULE_LINES = 400


def test_fit_is_at_most_110_lines_without_nested_functions():
    source = inspect.getsource(_fit)
    lines = source.splitlines()
    assert len(lines) <= MAX_FIT_LINES, (
        f"_fit has grown to {len(lines)} lines (at most {MAX_FIT_LINES}): move the new work into "
        "models/recipe.py, train/optimisation.py, train/epoch_end.py or a helper below the loop"
    )
    nested = [
        line.strip() for line in lines[1:] if line.lstrip().startswith(("def ", "class ", "async def "))
    ]
    assert nested == [], f"_fit defines {nested}: make them top-level functions over the loop state"


def test_the_loops_modules_stay_small():
    for module in (
        chestxai.train.loop,
        chestxai.train.epoch_end,
        chestxai.train.optimisation,
        chestxai.models.recipe,
    ):
        n = len(inspect.getsource(module).splitlines())
        assert n < MAX_MODULE_LINES, (
            f"{module.__name__} has {n} lines (< {MAX_MODULE_LINES}): split it by concept"
        )

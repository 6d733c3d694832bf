"""File names of ``chestxai experiment FILE.yaml --out DIR``.

``DIR/`` holds::

    experiment.json        the plan and each run's state (done, failed with its error, skipped)
    <name>/                every listed run: an ordinary run directory (or an ensemble's)
    comparison.md/.csv/.html, comparison_*.png   the comparison over the finished runs
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExperimentDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def state(self) -> Path:
        return self.root / "experiment.json"

    @property
    def comparison(self) -> Path:
        """The comparison's path prefix (``compare --out``)."""
        return self.root / "comparison"

    def run(self, name: str) -> Path:
        """``DIR/<name>/`` (names are checked by the experiment file's validation)."""
        return self.root / name

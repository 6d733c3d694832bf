"""Reading users' YAML (recipes, saved ``config.yaml``) without anchors or aliases.

Nested aliases are the "billion laughs": a 500-byte recipe whose value, once turned into text,
needs gigabytes. Recipes never need ``&name``/``*name``, so the loader refuses them while
composing, before anything is built, and says which file and line to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises on the first anchor or alias event."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML anchors and aliases (&name / *name) are not allowed in chestxai files; "
                "write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML text without anchors/aliases; any YAML error is a ValueError naming ``where``."""
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: {describe(exc)}") from None


def describe(exc: yaml.YAMLError) -> str:
    """One line for a YAML error (PyYAML's own text spans several, with a snippet)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{f'{context}: ' if context else ''}{problem}"


def load_yaml_file(path: str | Path) -> Any:
    """Read a user's YAML file safely; errors (bad YAML, aliases, binary data) name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    return load_yaml_text(text, str(path))

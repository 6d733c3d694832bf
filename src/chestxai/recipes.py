"""The recipes shipped with chestxai (``src/chestxai/configs/*.yaml``), found by name or path."""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).with_name("configs")


def list_recipes() -> list[str]:
    """Names of the recipes shipped with chestxai (``configs/*.yaml``)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_path(path_or_name: str | Path) -> Path:
    """A recipe file: a path, or the name of a shipped recipe (``pneumoniamnist_resnet18``)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = RECIPES / f"{path.stem}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"config file {path} does not exist; give a YAML path or one of the shipped recipes in configs/: "
        f"{', '.join(list_recipes())}"
    )

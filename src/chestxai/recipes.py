"""The recipes shipped with chestxai (``src/chestxai/configs/*.yaml``), found by name or path."""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).with_name("configs")


def list_recipes() -> list[str]:
    """Names of the recipes shipped with chestxai (``configs/*.yaml``)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def shipped_or_path(path_or_name: str | Path, folder: Path, what: str, listing: str) -> Path:
    """``path_or_name`` when it is a file, else the shipped ``folder/<name>.yaml`` of that bare name;
    neither: FileNotFoundError naming ``what`` was asked for and listing ``folder``'s names
    (``listing`` says where they are, e.g. "the shipped recipes in configs/")."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = folder / f"{path.stem}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
    raise FileNotFoundError(
        f"{what} {path} does not exist; give a YAML path or one of{' ' + listing if listing else ''}: {names}"
    )


def recipe_path(path_or_name: str | Path) -> Path:
    """A recipe file: a path, or the name of a shipped recipe (``pneumoniamnist_resnet18``)."""
    return shipped_or_path(path_or_name, RECIPES, "config file", "the shipped recipes in configs/")

"""Only ``models/`` reads a classifier checkpoint: every stage opens runs through ``TrainedRun``.

Checked on the source the way ``tests/test_rundir.py`` checks artefact names: six openers with
four task fallbacks grew because any module could index the dict ``torch.load`` returned. Outside
``chestxai/models`` (and the few modules below, which write or resume checkpoints, or are the
CycleGAN's own file type) no module may

* import ``read_checkpoint`` / ``load_model`` from ``chestxai.models.checkpoint`` or call ``torch.load``;
* subscript or ``.get`` a name or attribute called like a checkpoint (``ckpt``, ``checkpoint``,
  ``ckpts``, ``ckpt_dict``, ...);
* take a parameter named ``ckpt`` or ``checkpoint: dict`` (a checkpoint dict passed around).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import chestxai

SRC = Path(chestxai.__file__).parent
#: modules outside models/ allowed to hold a checkpoint dict, and why
ALLOWED = {
    "train/resume.py": "writes checkpoint.pt / last.pt and resumes training from last.pt's train_state",
    "train/loop.py": "builds the dict it hands to train/resume.py (make_checkpoint)",
    "testing.py": "writes the tiny runs tests open",
    "synth/checkpoint.py": "the CycleGAN's own checkpoint file type",
    "synth/cyclegan.py": "the CycleGAN's own checkpoint file type",
    "synth/loop.py": "writes the CycleGAN's own checkpoints",
}
FORBIDDEN_IMPORTS = {"read_checkpoint", "load_model"}
#: torch.load of files that are not run checkpoints
TORCH_LOAD_ALLOWED = {"synth/features.py": "a local Inception-v3 state-dict file"}
CHECKPOINT_NAME = re.compile(r"^(ckpt|ckpts|checkpoint|checkpoints)$|^ckpt_|_ckpts?$")


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_checkpoint_name(node: ast.AST) -> bool:
    name = _name(node)
    return name is not None and bool(CHECKPOINT_NAME.search(name))


def violations(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every way ``source`` reads a checkpoint dict itself."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "chestxai.models.checkpoint":
            for alias in node.names:
                if alias.name in FORBIDDEN_IMPORTS:
                    found.append((node.lineno, f"imports {alias.name}"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "load" and _name(func.value) == "torch":
                found.append((node.lineno, "torch.load"))
            elif isinstance(func, ast.Attribute) and func.attr == "get" and _is_checkpoint_name(func.value):
                found.append((node.lineno, f"{_name(func.value)}.get(...)"))
        elif isinstance(node, ast.Subscript) and _is_checkpoint_name(node.value):
            found.append((node.lineno, f"{_name(node.value)}[...]"))
        elif isinstance(node, ast.arg):
            dict_annotation = node.annotation is not None and "dict" in ast.unparse(node.annotation)
            if node.arg == "ckpt" or (node.arg == "checkpoint" and dict_annotation):
                found.append((node.lineno, f"parameter {node.arg}"))
    return found


def test_no_module_outside_models_reads_a_checkpoint_dict():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "models" or rel.as_posix() in ALLOWED:
            continue
        found += [
            f"{rel}:{line} {what}"
            for line, what in violations(path.read_text())
            if not (what == "torch.load" and rel.as_posix() in TORCH_LOAD_ALLOWED)
        ]
    assert not found, f"open runs with chestxai.models.trained_run.TrainedRun instead: {found}"


def test_the_allowed_modules_exist():
    """An allowance for a module that is gone would silently widen the rule for its successor."""
    assert [m for m in {**ALLOWED, **TORCH_LOAD_ALLOWED} if not (SRC / m).is_file()] == []


@pytest.mark.parametrize(
    "snippet",
    [
        "from chestxai.models.checkpoint import read_checkpoint\n",
        "from chestxai.models.checkpoint import load_model as lm\n",
        'names = list(ckpt["label_names"])\n',
        'task = checkpoint.get("task")\n',
        'size = self.checkpoint["preprocess"]["size"]\n',
        "first = ckpts[0]\n",
        'label = member_ckpt["label_names"]\n',
        "state = torch.load(path, weights_only=True)\n",
        "def f(run, ckpt):\n    return run\n",
        "def f(checkpoint: dict[str, object]):\n    return 1\n",
    ],
)
def test_the_rule_catches_each_way_back(snippet):
    assert violations(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "from chestxai.models.checkpoint import save_atomic, make_checkpoint\n",
        "epoch = trained.epoch\n",
        "def write(checkpoint: str | None = None):\n    return checkpoint\n",
        "path = run.checkpoint\n",
        "value = checkpoint_thresholds.get(name, 0.5)\n",
    ],
)
def test_the_rule_lets_typed_access_through(snippet):
    assert violations(snippet) == []

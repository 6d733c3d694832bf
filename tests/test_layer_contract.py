"""Layers only point down: the import-linter contracts in pyproject.toml hold, and they would catch
a lower layer importing a higher one (even inside a function, the kind of import that hides) and a
metric kernel reaching for files or data (``chestxai.metrics`` knows no models, caches or runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chestxai

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src_root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(src_root))  # this copy of chestxai, not the installed one
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=src_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def linter():
    if not LINT.exists():
        pytest.skip(f"{LINT} is absent: install the dev extra (pip install -e '.[dev]')")
    return lint


def test_the_layer_contract_holds(linter):
    result = linter(Path(chestxai.__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def _copy_with(tmp_path: Path, module: str, extra: str) -> Path:
    """A copy of the package with ``extra`` appended to ``module`` (a path under chestxai/)."""
    copy = tmp_path / "src"
    shutil.copytree(
        Path(chestxai.__file__).parent, copy / "chestxai", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = copy / "chestxai" / module
    target.write_text(target.read_text() + extra)
    return copy


def test_an_upward_import_inside_a_function_breaks_it(linter, tmp_path):
    copy = _copy_with(
        tmp_path,
        "evaluation/compare.py",
        "\n\ndef _sneaky():\n    from chestxai.report import build_report\n",
    )
    result = linter(copy)
    assert result.returncode != 0
    assert "chestxai.evaluation is not allowed to import chestxai.report" in result.stdout


def test_a_metric_kernel_reading_a_run_directory_breaks_it(linter, tmp_path):
    """``metrics`` sits above ``rundir`` in the layers, so only the kernels' own contract catches it."""
    copy = _copy_with(
        tmp_path,
        "metrics/threshold_policy.py",
        "\n\ndef _sneaky():\n    from chestxai.rundir import RunDir\n",
    )
    result = linter(copy)
    assert result.returncode != 0
    assert "chestxai.metrics is not allowed to import chestxai.rundir" in result.stdout
    assert "chestxai layers only point down KEPT" in result.stdout

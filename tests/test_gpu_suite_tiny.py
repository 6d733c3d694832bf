"""``benchmarks/gpu_suite.py --tiny`` keeps working on the CPU (issue 24): it runs to the end, every
documented key is in its JSON, and every ratio is a number or carries the reason it is not.

The suite itself is the GPU deliverable; this test is what stops it rotting between the rare
sessions that have a GPU. Nothing here needs one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "GPU_SUITE.md"


def documented_keys() -> tuple[list[str], list[str]]:
    """(top-level and environment keys, ratio keys) as docs/GPU_SUITE.md lists them."""
    text = DOC.read_text()
    plain = [k for k in re.findall(r"^\| `([a-z_/]+)` \|", text, re.M) if "{" not in k]
    block = text.split("<!-- ratio keys -->")[1].split("<!-- /ratio keys -->")[0]
    return plain, re.findall(r"^- `([^`]+)`", block, re.M)


def lookup(result: dict, path: str):
    node = result
    for part in path.split("/"):
        assert isinstance(node, dict) and part in node, f"{path}: no {part!r} in the JSON"
        node = node[part]
    return node


def test_the_doc_lists_keys() -> None:
    plain, ratios = documented_keys()
    assert "environment/torch" in plain and "sections/train/ratios/resnet50.amp" in ratios


@pytest.mark.slow  # ~75 s on 2 CPU cores: the suite's own time with --tiny
def test_gpu_suite_tiny_runs_and_writes_every_documented_key(tmp_path) -> None:
    out = tmp_path / "suite.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # CI's path even on a machine with a GPU
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--tiny", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    plain, ratios = documented_keys()
    for key in plain:
        lookup(result, key)
    for name, section in result["sections"].items():
        assert section["status"] == "ok", f"{name}: {section['error']}"
    for key in ratios:
        entry = lookup(result, key)
        assert set(entry) >= {"ratio", "measured", "limit", "unit", "target", "reason"}, key
        if entry["ratio"] is None:
            assert isinstance(entry["reason"], str) and entry["reason"], f"{key}: no number and no reason"
        else:
            assert isinstance(entry["ratio"], float) and entry["ratio"] > 0, key
    table = done.stdout
    assert "| section | measure |" in table and "torch " in table  # the Markdown table was printed
    assert "--tiny" in table and result["tiny"] is True

"""Atomic writes: no half-written files, no private permissions, no temp files left."""

from __future__ import annotations

import pytest


def test_atomic_writes_keep_normal_permissions(tmp_path) -> None:
    """Checkpoints and explanation files must be readable like any file the user writes."""
    import os

    import torch

    from chestxai.atomic import write_text
    from chestxai.models.checkpoint import save_atomic

    mask = os.umask(0o022)
    try:
        save_atomic({"a": torch.zeros(1)}, tmp_path / "ckpt.pt")
        write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(mask)
    for name in ("ckpt.pt", "x.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_atomic_dir_replaces_whole_merges_on_request_and_clears_a_dead_writers_staging(tmp_path):
    from chestxai.atomic import atomic_dir

    target = tmp_path / "out"
    dead = tmp_path / ".out.999999999.abc.tmp"  # a killed writer's staging folder (no such pid)
    dead.mkdir()
    (dead / "half.csv").write_text("half")
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in target.iterdir()] == [
        "new.txt"
    ]
    (target / "notes.txt").write_text("mine")
    with atomic_dir(target, merge=True) as tmp:
        (tmp / "new.txt").write_text("newer")
    assert (target / "notes.txt").read_text() == "mine" and (target / "new.txt").read_text() == "newer"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("broken")
        raise RuntimeError("killed half way")
    assert (target / "new.txt").read_text() == "newer" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out"
    ]

"""Atomic writes: no half-written files, no private permissions, no temp files left."""

from __future__ import annotations


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

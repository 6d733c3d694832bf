"""`chestxai predict`'s inputs (issue 20 #20, #21): every entry found is predicted or listed in
OUT.skipped.csv with a reason, and files that are not regular (a FIFO, a link to a device) are
never opened.

Unreadable folders: the tests run as root, for whom ``chmod 000`` blocks nothing, so the folder is
made unreadable by failing ``os.scandir`` on it (what ``os.walk`` calls) with ``PermissionError``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serve_helpers import write_png

from chestxai.cli import main
from fifo_guard import FifoGuard

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")


def _png(path: Path, seed: int) -> Path:
    return write_png(path, np.random.default_rng(seed).integers(0, 255, (40, 36), dtype=np.uint8))


def _predict(run_dir: Path, out: Path, *inputs: str) -> tuple[pd.DataFrame, dict[str, str]]:
    assert main(["predict", str(run_dir), *inputs, "--out", str(out), "--no-progress"]) == 0
    rows = pd.read_csv(out, dtype={"path": str})
    skipped = pd.read_csv(out.with_name(f"{out.stem}.skipped.csv"), dtype=str)
    return rows, dict(zip(skipped["path"], skipped["reason"], strict=True))


@needs_fifo
def test_folder_entries_are_predicted_or_listed_never_dropped(run_dir, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "in"
    _png(folder / "a.png", 0)
    _png(folder / "b.png", 1)
    _png(tmp_path / "outside" / "c.png", 2)
    _png(tmp_path / "outside" / "d.png", 3)
    (folder / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)  # real images
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a symlink loop
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")  # a dangling link
    _png(folder / "locked" / "e.png", 4)  # an unreadable folder (below)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with FifoGuard(folder / "pipe.png") as guard:
        rows, skipped = _predict(run_dir, tmp_path / "o.csv", "--folder", str(folder))
    assert not guard.opened
    assert sorted(os.path.relpath(p, folder) for p in rows["path"]) == [
        "a.png",
        "b.png",
        "linked/c.png",
        "linked/d.png",
    ]
    named = {os.path.relpath(p, folder): r for p, r in skipped.items()}
    assert set(named) == {"loop", "gone.png", "locked", "pipe.png"}, named
    assert "symlink" in named["loop"] and "loop" in named["loop"]
    assert named["gone.png"].startswith("dangling symlink")
    assert named["locked"].startswith("folder not readable")
    assert named["pipe.png"] == "not a regular file: fifo (named pipe)"
    printed = capsys.readouterr().out
    assert all(str(folder / n) in printed for n in named)  # and on screen


@needs_fifo
def test_images_and_csv_naming_a_fifo_or_device_are_skipped_unopened(run_dir, tmp_path):
    """``--images``/``--csv``: a FIFO and a ``.dcm`` link to a device are listed, never opened. The
    device is ``/dev/null`` here (``/dev/zero`` would make the old code read for ever); the check
    does not depend on which device it is."""
    good = _png(tmp_path / "good.png", 0)
    (tmp_path / "dev.dcm").symlink_to("/dev/null")
    with FifoGuard(tmp_path / "pipe.png") as guard:
        rows, skipped = _predict(
            run_dir,
            tmp_path / "i.csv",
            "--images",
            str(good),
            str(tmp_path / "pipe.png"),
            str(tmp_path / "dev.dcm"),
        )
        pd.DataFrame({"path": ["pipe.png", "good.png", "dev.dcm"]}).to_csv(tmp_path / "list.csv", index=False)
        rows_csv, skipped_csv = _predict(run_dir, tmp_path / "c.csv", "--csv", str(tmp_path / "list.csv"))
    assert not guard.opened
    want = {
        str(tmp_path / "pipe.png"): "not a regular file: fifo (named pipe)",
        str(tmp_path / "dev.dcm"): "not a regular file: character device",
    }
    assert list(rows["path"]) == [str(good)] and skipped == want
    assert list(rows_csv["path"]) == [str(good)] and skipped_csv == want

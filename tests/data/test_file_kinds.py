"""Issue 20 #20: only regular files are opened. A FIFO (or a link to a device) among the images is
listed as skipped with its kind, never opened, and ``prepare`` finishes.

The FIFOs are :class:`fifo_guard.FifoGuard`: on code that opens them the test fails (EOF arrives
from the guard) instead of hanging, and ``guard.opened`` proves the fixed code never opened them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from synth_images import gradient, write_png

from chestxai.data.prepare import prepare, summary
from chestxai.data.readers import read_table
from chestxai.data.readers._common import walk_files
from fifo_guard import FifoGuard

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        write_png(folder / n, gradient(20, 24))


@needs_fifo
def test_not_regular_names_each_kind_without_opening(tmp_path):
    from chestxai.data.file_kind import not_regular

    _images(tmp_path, ["a.png"])
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    (tmp_path / "zero.dcm").symlink_to("/dev/zero")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "self.png").symlink_to(tmp_path / "self.png")
    with FifoGuard(tmp_path / "pipe.png") as guard:
        assert not_regular(tmp_path / "pipe.png") == "not a regular file: fifo (named pipe)"
    assert not guard.opened
    assert not_regular(tmp_path / "a.png") == "" and not_regular(tmp_path / "link.png") == ""
    assert not_regular(tmp_path / "zero.dcm") == "not a regular file: character device"
    assert not_regular(tmp_path / "gone.png").startswith("dangling symlink to ")
    assert not_regular(tmp_path / "self.png") == "symlink loop"
    assert not_regular(tmp_path / "nothing.png") == "file not found"
    assert not_regular(tmp_path) == "is a folder, not a file"


@needs_fifo
def test_the_walker_lists_fifos_devices_and_dangling_links_as_skipped(tmp_path):
    _images(tmp_path / "COVID", ["c1.png", "c2.png"])
    (tmp_path / "COVID" / "zero.dcm").symlink_to("/dev/zero")
    (tmp_path / "COVID" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    skipped: list[dict] = []
    with FifoGuard(tmp_path / "COVID" / "pipe.png") as guard:
        files = walk_files(tmp_path, skipped=skipped)
    assert not guard.opened
    assert [f.name for f in files] == ["c1.png", "c2.png"]
    reasons = {Path(s["path"]).name: s["reason"] for s in skipped}
    assert reasons == {
        "pipe.png": "not a regular file: fifo (named pipe)",
        "zero.dcm": "not a regular file: character device",
        "gone.png": f"dangling symlink to {tmp_path / 'nowhere.png'}",
    }


@needs_fifo
def test_prepare_of_a_folder_with_a_fifo_finishes_and_lists_it(tmp_path):
    root = tmp_path / "data"
    _images(root / "NORMAL", ["n1.png", "n2.png"])
    _images(root / "COVID", ["c1.png", "c2.png"])
    with FifoGuard(root / "COVID" / "c3.png") as guard:
        cache = prepare("folder", root, size=16, out=tmp_path / "cache", workers=0, progress=False)
    assert not guard.opened
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["n"] == 4
    report = json.loads((cache / "prepare_report.json").read_text())
    assert report["skipped_folders"] == [
        {"path": str(root / "COVID" / "c3.png"), "reason": "not a regular file: fifo (named pipe)"}
    ]
    assert "c3.png: not a regular file: fifo" in summary(cache)


@needs_fifo
def test_prepare_of_a_manifest_naming_a_fifo_or_device_skips_them(tmp_path):
    """The csv reader lists files it does not walk: prepare's workers check before opening.

    The device is ``/dev/null`` (it ends at once, so the old code fails here instead of reading
    ``/dev/zero`` for ever); the check is the same for every device."""
    _images(tmp_path / "imgs", ["a.png", "b.png"])
    (tmp_path / "imgs" / "zero.dcm").symlink_to("/dev/null")
    pd.DataFrame(
        {
            "path": ["imgs/a.png", "imgs/pipe.png", "imgs/zero.dcm", "imgs/b.png"],
            "label": ["x", "y", "x", "y"],
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    with FifoGuard(tmp_path / "imgs" / "pipe.png") as guard:
        cache = prepare("csv", tmp_path / "m.csv", size=16, out=tmp_path / "cache", workers=0, progress=False)
    assert not guard.opened
    report = json.loads((cache / "prepare_report.json").read_text())
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert reasons == {
        "pipe.png": "not a regular file: fifo (named pipe)",
        "zero.dcm": "not a regular file: character device",
    }
    assert json.loads((cache / "meta.json").read_text())["n"] == 2


def test_folder_reader_table_lists_a_dangling_link(tmp_path):
    _images(tmp_path / "A", ["a.png"])
    (tmp_path / "A" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    t = read_table("folder", tmp_path)
    assert len(t) == 1 and [Path(s["path"]).name for s in t.skipped] == ["gone.png"]

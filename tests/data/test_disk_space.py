"""A full disk is one clear error before decoding, not a SIGBUS ("Bus error") in the middle of it:
the work maps' disk space is reserved when they are created."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from synth_images import gradient, write_png

from chestxai.cli import main
from chestxai.data import work_state
from chestxai.data.prepare import prepare

needs_fallocate = pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate here")


def folder(root, n=6):
    root.mkdir(parents=True)
    for i in range(n):
        write_png(root / f"img{i}.png", gradient(30 + i, 40))
    return root


@needs_fallocate
def test_the_work_maps_are_allocated_not_sparse(tmp_path):
    path = tmp_path / "map.u8"
    work_state.reserve(path, 1 << 20)
    assert path.stat().st_size == 1 << 20
    assert path.stat().st_blocks * 512 >= 1 << 20  # blocks on disk, not a hole


@needs_fallocate
def test_existing_bytes_survive_a_reservation(tmp_path):
    path = tmp_path / "map.u8"
    path.write_bytes(bytes(range(256)) * 4)
    work_state.reserve(path, 1024)
    assert path.read_bytes() == bytes(range(256)) * 4


def test_a_filesystem_without_fallocate_keeps_a_sparse_map(tmp_path, monkeypatch):
    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    path = tmp_path / "map.u8"
    work_state.reserve(path, 4096)
    assert path.stat().st_size == 4096


def test_a_full_disk_stops_prepare_with_one_line(tmp_path, monkeypatch, capsys):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    root = folder(tmp_path / "imgs")
    with pytest.raises(OSError, match="not enough disk space for the prepared cache") as caught:
        prepare("folder", root, size=32, out=tmp_path / "out", workers=1, progress=False)
    assert caught.value.errno == errno.ENOSPC
    code = main(["prepare", "--source", "folder", "--root", str(root), "--size", "32",
                 "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "GiB free" in err[0] and "$CHESTXAI_CACHE" in err[0]


def test_a_resumed_map_keeps_its_rows(tmp_path):
    path = tmp_path / "map.u8"
    first = work_state._memmap(path, (3, 4, 4), fresh=True)
    first[1] = 7
    first.flush()
    del first
    again = work_state._memmap(path, (3, 4, 4), fresh=False)
    assert (again[1] == 7).all() and (again[0] == 0).all()
    fresh = work_state._memmap(path, (3, 4, 4), fresh=True)
    assert not np.asarray(fresh).any()

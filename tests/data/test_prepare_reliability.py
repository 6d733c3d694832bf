"""prepare() under kills, Ctrl-C, a second concurrent run, --strict on a reused cache, empty tables.

The kill tests run ``prepare`` in a child process and tag it with a unique environment variable,
which its worker processes inherit: a process that still carries the tag after the child died is
an orphan (Linux only: the tag is read from ``/proc/<pid>/environ``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from synth_images import gradient, write_png
from test_prepare import bad_folder, cache_files

from chestxai.cli import main
from chestxai.data.cache import PreparedCache
from chestxai.data.prepare import PrepareError, prepare
from chestxai.data.table import ImageTable
from chestxai.data.work_state import OK, WORK
from chestxai.locks import LockedError, exclusive, is_locked

SIZE = 16
linux_only = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")


def image_folder(root: Path, n: int = 40, bad: bool = False) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        write_png(root / f"img{i:02d}.png", gradient(30 + i % 5, 40 + i % 7))
    if bad:
        (root / "zero.png").write_bytes(b"")
    return root


def run_child(code: str, tag: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (with ``prepare`` imported), tagged for :func:`tagged`."""
    full = "import os, signal\nfrom chestxai.data.prepare import prepare\n" + code
    return subprocess.run(
        [sys.executable, "-c", full],
        env={**os.environ, "CHESTXAI_TEST_TAG": tag, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def tagged(tag: str) -> list[int]:
    """Pids of live processes whose environment holds ``CHESTXAI_TEST_TAG=tag``."""
    needle = f"CHESTXAI_TEST_TAG={tag}".encode()
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as fh:
                    if needle in fh.read().split(b"\0"):
                        found.append(int(d))
            except OSError:
                pass
    return found


@pytest.fixture
def tag():
    """A unique tag; any process still carrying it at the end is killed (the test has failed then)."""
    t = uuid.uuid4().hex
    yield t
    for pid in tagged(t):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def wait_until_gone(tag: str, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


# --- killed parent, Ctrl-C (issue 9, weaker) ------------------------------------------------------
@linux_only
def test_killed_prepare_leaves_no_orphan_workers_and_resumes(tmp_path, tag):
    root = image_folder(tmp_path / "imgs")
    out = tmp_path / "out"
    code = (
        "def cb(done, total):\n"
        "    if done == 5:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"prepare('folder', {str(root)!r}, size={SIZE}, out={str(out)!r}, workers=2, progress=False, "
        "on_progress=cb)\n"
    )
    child = run_child(code, tag)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert wait_until_gone(tag) == []  # before the fix: 4 processes blocked forever
    fresh = prepare("folder", root, size=SIZE, out=tmp_path / "fresh", workers=1, progress=False)
    resumed = prepare("folder", root, size=SIZE, out=out, workers=2, progress=False)
    assert cache_files(resumed) == cache_files(fresh)


@linux_only
def test_ctrl_c_stops_the_workers_and_keeps_the_work_done(tmp_path, tag):
    root = image_folder(tmp_path / "imgs")
    out = tmp_path / "out"
    code = (
        # a terminal's Ctrl-C: a test run started in the background (`cmd &`, as CI may be) inherits
        # SIGINT ignored, and Python then installs no KeyboardInterrupt handler in the child
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "def cb(done, total):\n"
        "    if done == 10:  # to this thread: os.kill may land on a pool thread and be handled late\n"
        "        signal.raise_signal(signal.SIGINT)\n"
        f"prepare('folder', {str(root)!r}, size={SIZE}, out={str(out)!r}, workers=2, progress=False, "
        "on_progress=cb)\n"
    )
    child = run_child(code, tag)
    assert child.returncode != 0 and "KeyboardInterrupt" in child.stderr
    assert wait_until_gone(tag, seconds=5) == []
    (partial,) = out.iterdir()
    status = np.fromfile(partial / WORK / "status.u8", np.uint8)
    assert (status == OK).sum() >= 10 and not (partial / "meta.json").exists()
    fresh = prepare("folder", root, size=SIZE, out=tmp_path / "fresh", workers=1, progress=False)
    assert cache_files(prepare("folder", root, size=SIZE, out=out, workers=1, progress=False)) == cache_files(
        fresh
    )


# --- a kill at every write point resumes to the same bytes -----------------------------------------
@pytest.mark.parametrize(
    "point, bad",
    [
        ("prepare:after-item@7", False),
        ("prepare:after-images", False),  # the full work map was renamed into place
        ("prepare:after-images", True),  # the kept rows were copied out
        ("prepare:before-meta", True),
        ("prepare:after-meta", False),  # complete, but the work folder is still there
    ],
)
def test_a_kill_at_each_write_point_resumes_to_an_identical_cache(tmp_path, tag, point, bad):
    root = image_folder(tmp_path / "imgs", n=20, bad=bad)
    out = tmp_path / "out"
    code = f"prepare('folder', {str(root)!r}, size={SIZE}, out={str(out)!r}, workers=1, progress=False)\n"
    child = run_child(code, tag, CHESTXAI_CRASH_AT=point)
    assert child.returncode == 137, child.stderr
    fresh = prepare("folder", root, size=SIZE, out=tmp_path / "fresh", workers=1, progress=False)
    resumed = prepare("folder", root, size=SIZE, out=out, workers=1, progress=False)
    assert resumed.name == fresh.name and cache_files(resumed) == cache_files(fresh)
    assert not (resumed / WORK).exists()
    assert len(PreparedCache(resumed)) == 20


# --- two prepares of the same inputs (issue 9, weaker) ---------------------------------------------
def test_a_second_prepare_of_the_same_cache_fails_at_once_with_a_message(tmp_path):
    root = image_folder(tmp_path / "imgs", n=4)
    name = prepare("folder", root, size=SIZE, out=tmp_path / "probe", workers=1, progress=False).name
    target = tmp_path / "out" / name
    holder = exclusive(target, "prepared cache")  # stands in for a first prepare still running
    with holder, pytest.raises(LockedError, match="in use by another process.*re-run this command"):
        prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    assert not (target / WORK).exists()  # the second one wrote nothing
    assert PreparedCache(prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False))


def test_the_cache_is_locked_while_written_and_a_finished_one_is_reused_unlocked(tmp_path):
    root = image_folder(tmp_path / "imgs", n=4)
    out = tmp_path / "out"
    seen = []
    prepare(
        "folder",
        root,
        size=SIZE,
        out=out,
        workers=1,
        progress=False,
        on_progress=lambda d, t: seen.append(is_locked(next(out.iterdir()))),
    )
    assert seen and all(seen)
    (target,) = out.iterdir()
    with exclusive(target, "prepared cache"):  # e.g. a --force rebuild elsewhere holds it
        assert prepare("folder", root, size=SIZE, out=out, workers=1, progress=False) == target


def test_force_rebuild_keeps_the_lock_file(tmp_path):
    root = image_folder(tmp_path / "imgs", n=3)
    first = prepare("folder", root, size=SIZE, out=tmp_path, workers=1, progress=False)
    lock = (first / ".lock").stat().st_ino
    assert prepare("folder", root, size=SIZE, out=tmp_path, workers=1, progress=False, force=True) == first
    assert (first / ".lock").stat().st_ino == lock  # deleting a held lock file would let a third run in


# --- --strict on a reused cache (issue 9 #9) -------------------------------------------------------
def test_strict_fails_on_a_reused_cache_with_skipped_images(tmp_path):
    root = bad_folder(tmp_path / "bad")
    path = prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    assert PreparedCache(path).report["n_skipped"] == 4
    with pytest.raises(PrepareError, match=r"existing cache .* skipped 4 image\(s\).*prepare_report.json"):
        prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False, strict=True)
    assert PreparedCache(path)  # the cache itself stays usable without --strict


def test_cli_strict_exit_code_on_a_reused_cache(tmp_path, capsys):
    root = bad_folder(tmp_path / "bad")
    argv = ["prepare", "--source", "folder", "--root", str(root), "--size", str(SIZE)]
    argv += ["--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--strict"]) != 0
    err = capsys.readouterr().err
    assert "4 image(s)" in err and "prepare_report.json" in err


def test_strict_passes_on_a_reused_clean_cache(tmp_path):
    root = image_folder(tmp_path / "imgs", n=3)
    first = prepare("folder", root, size=SIZE, out=tmp_path, workers=1, progress=False)
    assert prepare("folder", root, size=SIZE, out=tmp_path, workers=1, progress=False, strict=True) == first


# --- empty tables (issue 9, weaker: a header-only CSV prepared an empty cache) ----------------------
def test_an_empty_table_is_refused(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(columns=["image_id", "path", "patient_id", "view", "split"])
    table = ImageTable("empty", frame, ["y"], np.zeros((0, 1), np.float32), "binary", root=tmp_path)
    with pytest.raises(PrepareError, match="lists no images"):
        prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_header_only_csv_is_an_error_not_an_empty_cache(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("path,label\n")
    argv = ["prepare", "--source", "csv", "--root", str(tmp_path / "m.csv"), "--option", "label_col=label"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chestxai prepare: error:") and "\n" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("meta.json"))


def test_report_of_a_reused_cache_is_not_rewritten(tmp_path):
    root = image_folder(tmp_path / "imgs", n=3)
    path = prepare("folder", root, size=SIZE, out=tmp_path, workers=1, progress=False)
    before = json.loads((path / "prepare_report.json").read_text())
    prepare("folder", root, size=SIZE, out=tmp_path, workers=1, progress=False, strict=True)
    assert json.loads((path / "prepare_report.json").read_text()) == before


def test_strict_fails_when_the_reader_could_not_walk_a_folder(tmp_path):
    """Issue 9 #10: a class folder the walk did not enter (here a link back to the root, a loop)
    is listed in the report, and --strict refuses, fresh and on reuse."""
    root = tmp_path / "tree"
    for cls in ("Normal", "Effusion"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            write_png(root / cls / f"{cls}{i}.png", gradient(30 + i, 40))
    (root / "Effusion" / "loop").symlink_to(root, target_is_directory=True)
    out = tmp_path / "cache"
    with pytest.raises(PrepareError, match="loop"):
        prepare("folder", root, size=SIZE, out=out, strict=True, progress=False)
    target = prepare("folder", root, size=SIZE, out=out, progress=False)  # without --strict: listed
    report = json.loads((target / "prepare_report.json").read_text())
    assert [s["path"] for s in report["skipped_folders"]] == [str(root / "Effusion" / "loop")]
    with pytest.raises(PrepareError, match="existing cache"):
        prepare("folder", root, size=SIZE, out=out, strict=True, progress=False)

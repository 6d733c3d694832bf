"""Sharded `evaluate` / `predict` under torchrun (issue 14): 2 gloo processes write the same
predictions.csv / metrics.json as one process, and a rank that dies or hangs fails the job with a
message instead of hanging it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from chestxai.cli import main
from chestxai.evaluation.sharded_inference import Shards, batch_block, predict_sharded
from chestxai.testing import write_tiny_run

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    run, cache = write_tiny_run(tmp_path_factory.mktemp("sharded"), task="multilabel", n_labels=3, n=48)
    return run, cache


def evaluate_args(run: Path, out: Path) -> list[str]:
    # batch 5: 24 test rows = 5 batches and 12 val rows = 3 batches, split unevenly over 2 ranks
    return ["evaluate", str(run), "--no-progress", "--n-boot", "50", "--device", "cpu", "--no-figures",
            "--batch-size", "5", "--out", str(out)]  # fmt: skip


def assert_close(a, b, path="metrics"):
    """Equal JSON, numbers within 1e-6."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-6), path
    else:
        assert a == b, path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_evaluate_writes_what_one_process_writes(tiny, tmp_path):
    run, _ = tiny
    assert main(evaluate_args(run, tmp_path / "single")) == 0
    done = subprocess.run([*TORCHRUN, "-m", "chestxai", *evaluate_args(run, tmp_path / "multi")], env=ENV,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("macro roc_auc") == 1  # only rank 0 reports
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == ["metrics.json", "predictions.csv"]
    a, b = (pd.read_csv(tmp_path / d / "predictions.csv") for d in ("single", "multi"))
    assert list(a["split"]) == ["val"] * 12 + ["test"] * 24  # val rows first, each in cache order
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6)
    assert_close(*(json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("single", "multi")))


def test_torchrun_predict_writes_what_one_process_writes(tiny, tmp_path):
    run, _ = tiny
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (40, 30 + i), dtype=np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    base = [
        "predict",
        str(run),
        "--folder",
        str(folder),
        "--no-progress",
        "--device",
        "cpu",
        "--batch-size",
        "2",
    ]
    assert main([*base, "--out", str(tmp_path / "single.csv")]) == 0
    done = subprocess.run([*TORCHRUN, "-m", "chestxai", *base, "--out", str(tmp_path / "multi.csv")], env=ENV,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("{}.csv", "{}.skipped.csv"):
        a, b = (pd.read_csv(tmp_path / name.format(d)) for d in ("single", "multi"))
        pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6)
    assert len(pd.read_csv(tmp_path / "multi.csv")) == 7


def test_a_rank_that_dies_fails_the_job_with_a_message_not_a_hang(tiny, tmp_path):
    """Ranks started by hand (as on two nodes, without one torchrun agent to kill the rest): rank 1
    dies before handing over its shard; rank 0 must stop with exit code 1 and say why."""
    run, _ = tiny
    env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2",
           "CHESTXAI_CRASH_AT": "evaluate:rank1-before-gather"}  # fmt: skip
    cmd = [sys.executable, "-m", "chestxai", *evaluate_args(run, tmp_path / "out")]
    procs = [
        subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for r in (0, 1)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=180) for p in procs]
    assert procs[1].returncode == 137  # the crash point
    assert procs[0].returncode == 1, outputs[0]
    err = outputs[0][1]
    assert "chestxai evaluate: error: rank 0 of 2: evaluate: another rank died" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


HANG = """
import sys, time
from chestxai.train import distributed as D
info = D.setup_inference(timeout_s=3)
if info.rank == 1:
    time.sleep(30)
started = time.monotonic()
try:
    D.gather_to_main([info.rank], info, timeout_s=3, what="test")
except D.PeerError as exc:
    print(f"{time.monotonic() - started:.1f}", exc)
    sys.exit(1)
"""


def test_a_rank_that_hangs_fails_the_others_after_the_timeout(tmp_path):
    env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    procs = [
        subprocess.Popen([sys.executable, "-c", HANG], env={**env, "RANK": str(r)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for r in (0, 1)
    ]  # fmt: skip
    started = time.monotonic()
    out, err = procs[0].communicate(timeout=120)
    procs[1].kill()
    procs[1].communicate()
    assert procs[0].returncode == 1, err[-2000:]
    assert "did not arrive within --dist-timeout 3 s" in out and "Ranks 1 failed" in out
    assert time.monotonic() - started < 25  # well before the hung rank would have woken up


def test_batch_blocks_cover_the_rows_in_order_on_whole_batches():
    for n in (0, 1, 5, 24, 101):
        for world in (1, 2, 3, 5):
            blocks = [batch_block(n, 4, r, world) for r in range(world)]
            assert [i for b in blocks for i in range(n)[b]] == list(range(n))
            assert all(b.start % 4 == 0 for b in blocks)
    # rank order is row order; other ranks get None
    parts = {}

    def gather_on(rank):
        def gather(obj):
            parts[rank] = obj
            return [parts[0], parts[1]] if rank == 1 else None  # "rank 1" plays rank 0 last here

        return gather

    rows = np.arange(10, 21)
    assert predict_sharded(lambda r: r[:, None] * 1.0, [rows], 3, Shards(0, 2, gather_on(0))) is None
    (merged,) = predict_sharded(lambda r: r[:, None] * 1.0, [rows], 3, Shards(1, 2, gather_on(1)))
    np.testing.assert_array_equal(merged[:, 0], rows)

"""Scale-out on existing engines (issue 14): 2 processes against 1, and the results identical.

1. ``prepare`` of the NIH box images (596 real 512 px PNGs, ``../shared/data/nih-bbox``): one
   process (``--workers 1``) against two ``--shard K/2`` processes (``--workers 1`` each) started
   together, then ``--merge-shards 2``; the merged cache is compared file by file with the one
   process cache (``images.u8``, ``index.csv``, ``labels.npy``, ``boxes.csv``, ``meta.json`` and
   the report without its timing). One process with ``--workers 2`` (the pool inside prepare)
   is timed for reference.
2. A small model is trained on that cache (resnet18, random init, 1 epoch, size ``--size``; only
   so that a real trained checkpoint is scored; its accuracy is not the point), then
   ``evaluate RUN --split all`` (every cache row, plus the val rows) and ``predict RUN --folder
   nih-bbox/images`` run in one process (2 torch threads, and 1 thread) and under
   ``torchrun --nproc_per_node 2`` (1 thread per rank, torchrun's default). Outputs are compared
   byte for byte (and within 1e-6).

Every step is a fresh ``python -m chestxai`` process, so each time includes start-up (importing
torch, loading the model) as a user would see it. Run it alone (under the heavy lock)::

    flock /tmp/chestxai-heavy.lock python benchmarks/sharded_scaleout.py [--data ../shared/data]
        [--size 224] [--work DIR] [--n-boot 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CHESTXAI = [sys.executable, "-m", "chestxai"]
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc_per_node=2",
    "-m",
    "chestxai",
]


def timed(cmds: list[list[str]], threads: int | None = None) -> float:
    """Start every command at once, wait for all; seconds of wall time. A failure stops the benchmark."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds
    ]
    outs = [p.communicate() for p in procs]
    seconds = time.perf_counter() - start
    for c, p, (out, err) in zip(cmds, procs, outs, strict=True):
        if p.returncode:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(c)}\n{out[-2000:]}\n{err[-3000:]}")
    return seconds


def repeated(make: Callable[[int], list[list[str]]], repeats: int, threads: int | None = None) -> Timing:
    """``make(i)`` -> the commands of repeat ``i`` (own output paths); the median and every time."""
    return Timing([timed(make(i), threads) for i in range(repeats)])


@dataclass
class Timing:
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def __str__(self) -> str:
        return f"{self.median:6.1f} s (runs: {', '.join(f'{r:.1f}' for r in self.runs)})"


def only_dir(folder: Path) -> Path:
    (cache,) = [d for d in folder.iterdir() if d.is_dir() and (d / "meta.json").exists()]
    return cache


def cache_files(path: Path) -> dict[str, bytes]:
    report = json.loads((path / "prepare_report.json").read_text())
    report.pop("seconds_last_run")
    files = {f.name: f.read_bytes() for f in path.iterdir() if f.is_file() and not f.name.startswith(".")}
    files["prepare_report.json"] = json.dumps(report, sort_keys=True).encode()
    return files


def same_outputs(a: Path, b: Path) -> str:
    """'identical' (bytes), or the largest numeric difference when only floats differ."""
    if filecmp.cmp(a, b, shallow=False):
        return "identical bytes"
    if a.suffix == ".csv":
        fa, fb = pd.read_csv(a), pd.read_csv(b)
        num = fa.select_dtypes("number").columns
        pd.testing.assert_frame_equal(fa.drop(columns=num), fb.drop(columns=num))
        return f"max |diff| {np.nanmax(np.abs(fa[num].to_numpy() - fb[num].to_numpy())):.2e}"
    return "differ (see files)"


def bench_prepare(nih: Path, work: Path, size: int, repeats: int) -> Path:
    base = [*CHESTXAI, "prepare", "--source", "nih", "--root", str(nih), "--size", str(size), "--no-progress"]
    one = repeated(lambda i: [[*base, "--out", str(work / f"p1-{i}"), "--workers", "1"]], repeats)
    pool = repeated(lambda i: [[*base, "--out", str(work / f"p1w2-{i}"), "--workers", "2"]], repeats)

    def sharded(i: int) -> list[str]:
        return [*base, "--out", str(work / f"p2-{i}"), "--workers", "1"]

    shards = repeated(lambda i: [[*sharded(i), "--shard", f"{k}/2"] for k in (1, 2)], repeats)
    merge = repeated(lambda i: [[*sharded(i), "--merge-shards", "2"]], repeats)
    single, merged = only_dir(work / "p1-0"), only_dir(work / "p2-0")
    equal = all(
        cache_files(only_dir(work / f"p1-{i}")) == cache_files(only_dir(work / f"p2-{i}"))
        for i in range(repeats)
    )
    equal = equal and single.name == merged.name
    n = json.loads((single / "meta.json").read_text())["n"]
    both = statistics.median(a + b for a, b in zip(shards.runs, merge.runs, strict=True))
    print(f"prepare nih-bbox ({n} images, 512 px PNG -> {size} px), median of {repeats}:")
    print(f"  1 process, --workers 1:                    {one}")
    print(f"  1 process, --workers 2 (prepare's pool):   {pool}")
    print(f"  2 shard processes (--workers 1) together:  {shards}")
    print(f"  merge:                                     {merge}")
    print(
        f"  speed-up 1 process / 2 shards: {one.median / shards.median:.2f}x (with the merge {one.median / both:.2f}x)"
    )
    print(f"  merged cache == one-process cache (same key, every file, report minus timing): {equal}")
    if not equal:
        raise SystemExit("the merged cache differs from the one-process cache")
    return merged


def bench_inference(nih: Path, cache: Path, work: Path, size: int, n_boot: int, repeats: int) -> None:
    run = work / "run"
    train = [*CHESTXAI, "train", "--run-dir", str(run), "--model", "resnet18", "--no-pretrained", "--epochs", "1",
             "--batch-size", "32", "--no-progress", "--device", "cpu", "--set", f"data.cache_dir={cache}",
             "--set", "data.source=nih", "--set", f"data.root={nih}", "--set", f"data.size={size}"]  # fmt: skip
    print(f"train resnet18 1 epoch on the merged cache (setup only): {timed([train]):.1f} s")
    ev = ["evaluate", str(run), "--split", "all", "--n-boot", str(n_boot), "--no-figures", "--device", "cpu",
          "--batch-size", "32", "--no-progress"]  # fmt: skip
    pr = ["predict", str(run), "--folder", str(nih / "images"), "--device", "cpu", "--batch-size", "32",
          "--no-progress"]  # fmt: skip
    rows = len(pd.read_csv(cache / "index.csv"))
    for name, args, outputs in (
        (f"evaluate --split all ({rows} rows + val rows, n-boot {n_boot})", ev, ("predictions-all.csv", "metrics-all.json")),
        ("predict --folder nih-bbox/images (decode + score)", pr, None),
    ):  # fmt: skip

        def dest(tag: str, i: int = 0, args=args, outputs=outputs) -> Path:
            return work / f"{args[0]}-{tag}-{i}" / ("" if outputs else "preds.csv")

        def cmds(launcher: list[str], tag: str, args=args, dest=dest):
            return lambda i: [[*launcher, *args, "--out", str(dest(tag, i))]]

        t2 = repeated(cmds(CHESTXAI, "1p2t"), repeats, threads=2)
        t1 = repeated(cmds(CHESTXAI, "1p1t"), repeats, threads=1)
        tr = repeated(cmds(TORCHRUN, "2p"), repeats)
        print(f"{name}, median of {repeats}:")
        print(f"  1 process, 2 threads:                 {t2}")
        print(f"  1 process, 1 thread:                  {t1}")
        print(f"  torchrun 2 processes (1 thread each): {tr}")
        print(f"  speed-up vs 1 process 2 threads: {t2.median / tr.median:.2f}x; "
              f"vs 1 process 1 thread: {t1.median / tr.median:.2f}x")  # fmt: skip
        for f in outputs or ("",):
            for tag in ("1p2t", "1p1t"):
                verdict = same_outputs(dest(tag) / f, dest("2p") / f)
                print(f"  {f or 'preds.csv'}: 2 processes vs 1 process {tag}: {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument(
        "--repeats", type=int, default=3, help="times each measurement is repeated (median shown)"
    )
    ap.add_argument("--work", type=Path, default=None, help="keep everything here (default: a temp folder)")
    args = ap.parse_args()
    nih = args.data / "nih-bbox"
    if not nih.is_dir():
        raise SystemExit(f"{nih} not found; pass --data pointing at the shared data folder")
    print(
        f"cpus available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}", flush=True
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="sharded-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cache = bench_prepare(nih, work, args.size, args.repeats)
        bench_inference(nih, cache, work, args.size, args.n_boot, args.repeats)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

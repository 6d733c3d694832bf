"""Decompression bombs against `chestxai serve`: the server's peak RSS over its idle size (issue 20).

Starts ``chestxai serve`` on a tiny untrained 224 px run (``chestxai.testing.write_tiny_run``:
weights do not change decoding) in its own process, on a free loopback port, with the sources
given by ``--src`` (default: this tree; pass a checkout of an older commit for contrast), then

1. sends one small PNG and records the idle RSS (VmRSS);
2. sends ``--copies`` x 3 uploads at once (9 by default): a 2 MB deflated DICOM whose 64 x 64
   header hides 2 GiB of zeros, the issue's 308 KB 8900 x 8900 RGBA PNG, and a legitimate
   6000 x 6000 8-bit PNG; polls VmRSS every 10 ms and reads VmHWM (the kernel's peak) at the end;
3. sends one more small PNG, which must answer 200.

It prints each upload's status, idle and peak RSS, and (peak - idle) / ``--limit-gb`` (the
acceptance bound is 1.5 GB). The server is killed when its RSS passes idle + ``--kill-gb``.

    python benchmarks/serve_bombs.py [--src src] [--copies 3] [--limit-gb 1.5] [--kill-gb 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    import httpx
    from PIL import Image

    from chestxai.testing import deflated_dicom_bomb, png_bomb_file, write_tiny_run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(ROOT / "src"), help="the chestxai sources the server runs")
    ap.add_argument("--copies", type=int, default=3, help="uploads of each kind sent at once (default 3)")
    ap.add_argument("--limit-gb", type=float, default=1.5)
    ap.add_argument("--kill-gb", type=float, default=3.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run, _ = write_tiny_run(tmp / "r", size=224)
        files = {
            "deflated.dcm": (deflated_dicom_bomb(tmp / "deflated.dcm", pixel_mib=2048), "application/dicom"),
            "rgba.png": (png_bomb_file(tmp / "rgba.png", 8900, 8900, "RGBA"), "image/png"),
        }
        ramp = np.add.outer(np.arange(6000), np.arange(6000)) % 256
        Image.fromarray(ramp.astype(np.uint8)).save(tmp / "large.png")
        files["large.png"] = (tmp / "large.png", "image/png")
        Image.fromarray(ramp[:300, :300].astype(np.uint8)).save(tmp / "small.png")
        small = (tmp / "small.png").read_bytes()
        for name, (path, _) in files.items():
            print(f"{name}: {path.stat().st_size / 1e6:.2f} MB file")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": args.src}
        cmd = [sys.executable, "-m", "chestxai", "serve", str(run), "--port", str(port), "--device", "cpu"]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        killed = False
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)

            def post(name, data, kind):
                return httpx.post(
                    f"{base}/v1/predict", files={"file": (name, data, kind)}, timeout=300
                ).status_code

            assert post("small.png", small, "image/png") == 200
            time.sleep(1.0)
            idle = status_kb(server.pid, "VmRSS") * 1024
            peak_polled = [idle]
            stop = threading.Event()

            def poll() -> None:
                nonlocal killed
                while not stop.is_set() and server.poll() is None:
                    rss = status_kb(server.pid, "VmRSS") * 1024
                    peak_polled[0] = max(peak_polled[0], rss)
                    if rss > idle + args.kill_gb * GB:
                        killed = True
                        server.kill()
                    time.sleep(0.01)

            watcher = threading.Thread(target=poll, daemon=True)
            watcher.start()
            jobs = [(n, p.read_bytes(), k) for n, (p, k) in files.items() for _ in range(args.copies)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(len(jobs)) as pool:

                def send(job):
                    try:
                        return post(*job)
                    except httpx.HTTPError as exc:
                        return type(exc).__name__

                answers = list(pool.map(send, jobs))
            wall = time.perf_counter() - t0
            hwm = status_kb(server.pid, "VmHWM") * 1024 if server.poll() is None else peak_polled[0]
            stop.set()
            nxt = post("small.png", small, "image/png") if server.poll() is None else "server killed"
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(30)
    peak = max(hwm, peak_polled[0])
    print(f"sources: {args.src}")
    for (name, _, _), answer in zip(jobs, answers, strict=True):
        print(f"  {name}: {answer}")
    print(f"{len(jobs)} concurrent uploads answered in {wall:.1f} s")
    print(
        f"idle RSS {idle / 1e6:.0f} MB, peak RSS {peak / 1e6:.0f} MB (VmHWM), over idle {(peak - idle) / 1e6:.0f} MB"
    )
    print(
        f"(peak - idle) / {args.limit_gb} GB = {(peak - idle) / (args.limit_gb * GB):.2f}"
        + (" (killed)" if killed else "")
    )
    print(f"next request: {nxt}")


if __name__ == "__main__":
    main()

"""Bounded loopback load test of `chestxai serve`, and ONNX Runtime vs PyTorch on CPU.

For each served run (the quickstart run at its 28 px, and a 224 px ResNet-18 run made with
``chestxai.testing.write_tiny_run``: weights do not change speed), it

1. measures the model's own batched forward (``predict_probs`` on random uint8 images at the size
   the service resizes to, batch 32): the limit a service can approach;
2. starts ``chestxai serve`` in its own process on a free loopback port and sends a fixed number
   of POST /v1/predict requests (a real NIH PNG) at 1, 8 and 32 concurrent clients; each level
   stops after its requests or ``--max-seconds``, whichever comes first;
3. prints throughput, p50/p95/p99 latency, errors, throughput / forward images/s, the server's
   forwards per request (micro-batching at work) and its peak RSS (VmHWM);
4. exports the run to ONNX (a temporary folder) and times onnxruntime vs PyTorch at batch 1 and 32.

    python benchmarks/serve_load.py [--requests 2000] [--concurrency 1 8 32] [--runs quickstart tiny224]

Loopback only; the client runs in this process (httpx, asyncio), on the same CPUs as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def forward_rate(
    model, preprocess, size: int, batch: int, seconds: float = 5.0, device: str = "cpu"
) -> float:
    """Images/s of the served model's batched forward (uint8 in, probabilities back on the host)."""
    from chestxai.models.predict import predict_probs

    x = np.random.default_rng(0).integers(0, 255, (batch, size, size), dtype=np.uint8)
    predict_probs(model, x, preprocess, batch, device)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        predict_probs(model, x, preprocess, batch, device)
        n += batch
    return n / (time.perf_counter() - t0)


def onnx_rate(session, size: int, batch: int, seconds: float = 5.0) -> float:
    x = np.random.default_rng(0).integers(0, 255, (batch, size, size), dtype=np.uint8)
    session.forward(x, batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        session.forward(x, batch)
        n += batch
    return n / (time.perf_counter() - t0)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, image: bytes, requests: int, clients: int, max_seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + max_seconds

    async def client(http):
        nonlocal sent, errors
        while sent < requests and time.perf_counter() < deadline:
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await http.post(f"{base}/v1/predict", files={"file": ("xray.png", image, "image/png")})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
    }


def bench_run(name: str, run: Path, image: Path, args) -> None:
    import httpx

    from chestxai.export.onnx import export_run
    from chestxai.export.runtime import OnnxModel
    from chestxai.serve.models import load_served

    served = load_served(run)
    size = served.resize_to
    limit = forward_rate(served.model, served.preprocess, size, 32)
    print(
        f"\n## {name}: {served.description}, input {served.preprocess['size']} px (images resized to {size} px)"
    )
    print(f"model's own batched forward (batch 32): {limit:.0f} images/s")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "chestxai",
        "serve",
        str(run),
        "--port",
        str(port),
        "--max-queue",
        "1024",
        "--device",
        "cpu",
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        data = image.read_bytes()
        print(
            "| clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms | req/s / forward img/s | forwards per request |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for clients in args.concurrency:
            before = httpx.get(f"{base}/healthz").json()
            res = asyncio.run(load(base, data, args.requests, clients, args.max_seconds))
            after = httpx.get(f"{base}/healthz").json()
            fw = sum(after["forwards"].values()) - sum(before["forwards"].values())
            print(
                f"| {clients} | {res['requests']} | {res['errors']} | {res['rps']:.1f} | {res['p50']:.1f} | "
                f"{res['p95']:.1f} | {res['p99']:.1f} | {res['rps'] / limit:.2f} | {fw / max(res['requests'], 1):.2f} |"
            )
        print(f"server peak RSS: {peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(30)
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_run(run, Path(tmp) / "m.onnx", images=[image])
        session = OnnxModel(exported.path)
        print(f"ONNX parity on {exported.parity_source}: max abs diff {exported.max_abs_diff:.1e}")
        print("| batch | PyTorch img/s | ONNX Runtime img/s | ratio |")
        print("|---|---|---|---|")
        for batch in (1, 32):
            pt = forward_rate(served.model, served.preprocess, size, batch, 4.0)
            ox = onnx_rate(session, size, batch, 4.0)
            print(f"| {batch} | {pt:.0f} | {ox:.0f} | {ox / pt:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--max-seconds", type=float, default=120.0, help="per concurrency level")
    p.add_argument("--runs", nargs="+", default=["quickstart", "tiny224"])
    p.add_argument("--quickstart", default=str(ROOT / "runs" / "quickstart"))
    args = p.parse_args()
    import torch

    import chestxai
    from chestxai.paths import shared_data_root
    from chestxai.testing import write_tiny_run

    image = sorted((shared_data_root() / "nih-bbox" / "images").glob("*.png"))[0]
    print(
        f"chestxai {chestxai.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}; image {image.name} (512 px PNG)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            if name == "quickstart":
                bench_run(name, Path(args.quickstart), image, args)
            else:
                run, _ = write_tiny_run(Path(tmp) / name, "binary", 1, n=24, size=224)
                bench_run(name, run, image, args)


if __name__ == "__main__":
    main()

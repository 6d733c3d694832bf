"""The GPU suite: every hot path measured against its own limit, in one bounded command.

A GPU machine is lent now and then for ~15 minutes; this one call measures everything there, and
CI runs ``--tiny`` on the CPU so that it has not rotted in between (docs/GPU_SUITE.md documents the
JSON keys and the targets). Each section builds on a synthetic cache written by the real
``prepare`` writers (``chestxai.testing.write_tiny_cache``) and reports ratios, each a measured
rate divided by its limit measured in the same run:

data      the loop's data path alone (memmap gather -> device -> keyed augmentation -> resize and
          normalise) against the fastest training rate (>= 3x), and the share of a training step
          spent on data (the loop is serial, so share = loop rate / data rate; < 5%)
train     the real training loop (``chestxai.train.loop.train``) for resnet50 and densenet121 in
          float32, bf16 autocast, + channels_last, + torch.compile, against the model's own
          forward + backward + AdamW at the same settings (>= 0.95); peak GPU memory
explain   Grad-CAM of a batch x all findings (chestxai's Explainer) against forward + backward, and
          against pytorch-grad-cam's per-image, per-finding loop (>= 10x)
mc        MC dropout (30 passes) against 30 forwards
serve     ``chestxai serve`` at 32 loopback clients against the model's batched forward
cyclegan  the CycleGAN step against its four networks' forward + backward (same passes)
ddp       DistributedDataParallel steps (NCCL on CUDA, gloo on CPU; world size 1, and 2 with 2 GPUs)
          against the same steps without DDP

Every section fails soft (its error is recorded, the rest goes on) and has a time budget.

    python benchmarks/gpu_suite.py [--tiny] [--out FILE.json] [--device auto] [--only train explain]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks' measuring functions
from gpu_sections import (  # noqa: E402
    FORMAT,
    FULL,
    TINY,
    build_cache,
    section_cyclegan,
    section_data,
    section_ddp,
    section_explain,
    section_mc,
    section_serve,
    section_train,
)

log = logging.getLogger("gpu_suite")


class Budget(Exception):
    """A section ran past its time budget (raised by SIGALRM between Python bytecodes)."""


SECTIONS = {  # train before data: the data path's ratios are against the fastest training rate
    "train": section_train, "data": section_data, "explain": section_explain, "mc": section_mc,
    "serve": section_serve, "cyclegan": section_cyclegan, "ddp": section_ddp,
}  # fmt: skip


def run_section(name: str, ctx: dict) -> dict:
    """One section under its budget (SIGALRM); an error is recorded, never raised."""
    budget = ctx["size"].budget_s[name] * ctx["budget_scale"]

    def stop(*_):
        raise Budget(f"over its {budget:.0f} s budget")

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(max(1, round(budget)))
    start = time.perf_counter()
    out = {"status": "ok", "error": None, "figures": {}, "ratios": {}}
    try:
        got = SECTIONS[name](ctx, out)  # a section fills ``out`` as it goes, or returns its results
        if got:
            out["figures"].update(got["figures"])
            out["ratios"].update(got["ratios"])
    except Exception as exc:  # fail soft: the next section still runs; what was measured is kept
        signal.alarm(0)
        log.debug("section %s failed", name, exc_info=True)
        out.update(status="error", error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        signal.alarm(0)
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    import chestxai

    env = {
        "device": str(device), "device_name": _cpu_name(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "driver": None, "gpu_count": torch.cuda.device_count(),
        "chestxai": chestxai.__version__, "python": platform.python_version(),
    }  # fmt: skip
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        try:
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            env["driver"] = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.split()[
                0
            ]
        except (OSError, IndexError, subprocess.SubprocessError):
            env["driver"] = "unknown (nvidia-smi not readable)"
    return env


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"{'--tiny, ' if result['tiny'] else ''}{env['device_name']} ({env['device']}), driver {env['driver']}, "
        f"torch {env['torch']}, CUDA {env['cuda']}, {env['cpu_count']} CPUs; {result['seconds']:.0f} s in all",
        "",
        "| section | measure | measured | limit | unit | ratio | target | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, sec in result["sections"].items():
        if sec["status"] != "ok":
            lines.append(f"| {name} | - | | | | - | | {sec['status']}: {sec['error']} |")
        for key, r in sec["ratios"].items():
            value = f"{r['ratio']:.3g}" if r["ratio"] is not None else "-"
            fmt = lambda v: "" if v is None else f"{v:.4g}"  # noqa: E731
            lines.append(
                f"| {name} | {key} | {fmt(r['measured'])} | {fmt(r['limit'])} | {r['unit']} | {value} | "
                f"{r['target']} | {r['reason'] or ''} |"
            )
    return "\n".join(lines)


def main() -> None:
    from chestxai.devices import pick_device

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a few hundred 32 px images: CI on 2 CPU cores")
    ap.add_argument(
        "--out", type=Path, default=None, help="write the JSON here (docs/GPU_SUITE.md: its keys)"
    )
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument(
        "--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="sections to run"
    )
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiply every section's time budget")
    args = ap.parse_args()
    if args.out is not None and args.out.exists():
        raise SystemExit(f"{args.out} exists; the suite never overwrites a file: pass a new --out")
    device = pick_device(args.device)
    size = TINY if args.tiny else FULL
    started = time.perf_counter()
    result = {"format": FORMAT, "tiny": args.tiny, "environment": environment(device), "size": size.__dict__}
    with tempfile.TemporaryDirectory(prefix="gpu-suite-") as tmp:
        cache = build_cache(Path(tmp), size)
        result["cache_seconds"] = round(time.perf_counter() - started, 2)
        ctx = {"device": device, "size": size, "tiny": args.tiny, "tmp": Path(tmp), "cache": cache,
               "budget_scale": args.budget_scale}  # fmt: skip
        result["sections"] = {}
        for name in [s for s in SECTIONS if s in args.only]:
            result["sections"][name] = run_section(name, ctx)
            print(
                f"{name}: {result['sections'][name]['status']} in {result['sections'][name]['seconds']} s",
                flush=True,
            )
    result["seconds"] = round(time.perf_counter() - started, 2)
    print(markdown(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Training throughput of the real loop against the model's own limit.

For each case: the real training loop (``chestxai.train.loop.train``: ``epoch_order`` +
``iterate_batches`` from the cache memmap, keyed augmentation on the device, AMP off, AdamW,
scheduler, per-epoch crash-safe writes) over a real prepared cache, in images/s of
training time (validation excluded), divided by the same model's forward + backward + AdamW step
on random tensors of the same shape and batch size - the ceiling the loop could reach. Target: a
ratio >= 0.95. Peak memory is the case's own process peak RSS (and CUDA peak when on a GPU), so
each case runs in a fresh subprocess.

Cases: resnet18 and densenet121 at 224 px on the NIH box images (multi-label, 14 findings), and
the PneumoniaMNIST quickstart recipe (resnet18, 28 px, batch 128).

    python benchmarks/train_throughput.py [--data ../shared/data] [--steps 12] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "resnet18-224-nih": {"model": "resnet18", "source": "nih", "sub": "nih-bbox", "size": 224, "batch": 32},
    "densenet121-224-nih": {"model": "densenet121", "source": "nih", "sub": "nih-bbox", "size": 224, "batch": 32},
    "pneumoniamnist-recipe": {
        "model": "resnet18", "source": "medmnist", "sub": "pneumoniamnist", "size": 28, "batch": 128,
    },
}  # fmt: skip


def limit_images_per_s(
    model_name: str,
    labels: int,
    task: str,
    size: int,
    batch: int,
    steps: int,
    device: str,
    *,
    precision: str = "float32",
    channels_last: bool = False,
    compile_mode: str = "off",
    warmup: int = 2,
) -> float:
    """The model's own forward + backward + AdamW step on random tensors (median of ``steps``),
    at the training loop's settings: autocast to ``precision``, ``channels_last`` model and input,
    ``torch.compile`` in ``compile_mode`` (the warm-up steps pay the compile)."""
    import torch

    from chestxai.models import create_model
    from chestxai.train.losses import task_loss

    torch.manual_seed(0)
    model = create_model(model_name, labels, task, input_size=size).to(device).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step_model = torch.compile(model, mode=compile_mode) if compile_mode != "off" else model
    x = torch.randn(batch, 1, size, size, device=device).contiguous(memory_format=fmt)
    y = (torch.rand(batch, labels, device=device) > 0.5).float()
    dtype = getattr(torch, precision)
    times = []
    for i in range(steps + warmup):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=precision != "float32"):
            logits = step_model(x)
        loss = task_loss(task, logits.float(), y, None, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:  # warm-up steps (allocator, kernels, compile)
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def run_case(name: str, data: Path, steps: int, device: str) -> dict:
    """One case in this process: the real loop, then the limit; returns figures as a dict."""
    import pandas as pd
    import torch

    from chestxai.config import load_config
    from chestxai.train.loop import train

    case = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            None,
            [
                f"data.source={case['source']}",
                f"data.root={data / case['sub']}",
                f"data.size={case['size']}",
                f"data.cache={tmp}/cache",
                f"run_dir={tmp}/run",
                f"model.name={case['model']}",
                "train.epochs=2",  # epoch 1 warms up; epoch 2 is measured
                f"train.batch_size={case['batch']}",
                f"train.max_steps_per_epoch={steps}",
                f"train.device={device}",
                "train.lr=0.0001",
            ],
        )
        run = train(config, progress=False)
        history = pd.read_csv(run / "history.csv")
        loop_rate = float(history["train_images_per_s"].iloc[-1])
        labels = len(json.loads((Path(config.data.cache_dir) / "meta.json").read_text())["label_names"])
        task = json.loads((Path(config.data.cache_dir) / "meta.json").read_text())["task"]
    limit = limit_images_per_s(case["model"], labels, task, case["size"], case["batch"], steps, device)
    out = {
        "case": name,
        "loop_images_per_s": loop_rate,
        "limit_images_per_s": limit,
        "ratio": loop_rate / limit,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    from chestxai.paths import shared_data_root

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=shared_data_root(), help="the shared real-data folder")
    ap.add_argument("--steps", type=int, default=12, help="training steps measured per case")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_case(args.one, args.data, args.steps, args.device)))
        return
    if not (args.data / "nih-bbox").is_dir():
        raise SystemExit(f"{args.data} does not hold nih-bbox/ and pneumoniamnist/; pass --data")
    print(f"{'case':24s} {'loop img/s':>10s} {'limit img/s':>11s} {'ratio':>6s} {'peak RSS MiB':>12s}")
    for name in args.cases:
        cmd = [sys.executable, __file__, "--one", name, "--data", str(args.data), "--steps", str(args.steps)]
        result = subprocess.run([*cmd, "--device", args.device], capture_output=True, text=True, check=False)
        if result.returncode:
            print(f"{name}: failed\n{result.stderr[-2000:]}")
            continue
        r = json.loads(result.stdout.strip().splitlines()[-1])
        extra = f"  peak CUDA {r['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in r else ""
        print(
            f"{name:24s} {r['loop_images_per_s']:10.1f} {r['limit_images_per_s']:11.1f} {r['ratio']:6.2f} "
            f"{r['peak_rss_mib']:12.0f}{extra}"
        )


if __name__ == "__main__":
    main()

"""CycleGAN training throughput of the real loop against the networks' own limit.

The real loop (``chestxai.synth.loop.train_synth``: both domains' rows drawn in a seeded order
from the prepared cache's memmap, uint8 to the device, the full CycleGAN step, loss bookkeeping,
progress; per-epoch checkpoint/grid writes excluded, as the loop's ``epoch_time_s`` excludes
them) in images/s of training time (both domains' images: 2 x batch per step), divided by the
same CycleGAN step (both generators and both discriminators: G forward both ways, cycle,
identity, G backward + Adam, pooled D forward/backward + Adam) on random tensors of the same
shape, batch and step count -- the ceiling the loop could reach. Target: a ratio >= 0.9.

The loop runs ``--rounds + 1`` epochs of ``--steps`` steps in one call (epoch 1 warms up and
is not counted); the limit runs ``--rounds`` blocks of ``--steps`` timed steps (after two
warm-up steps) before the loop and ``--rounds`` after it. Each side's figure is its best epoch
or block (as ``timeit`` takes the best time): on a shared machine other processes only ever slow
a round down, and measuring the limit on both sides of the loop keeps a slow spell from
favouring either side. Medians are printed beside them. Data: PneumoniaMNIST from the shared data folder prepared at ``--size``
(normal <-> pneumonia), or ``--synthetic`` blob images.

    python benchmarks/synth_throughput.py [--size 64] [--steps 10] [--rounds 3] [--batch 4] [--ngf 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path


def limit_images_per_s(settings, size: int, steps: int, device: str) -> float:
    """The CycleGAN step alone on random tensors in [-1, 1]: images of both domains per second."""
    import torch

    from chestxai.synth.cyclegan import CycleGAN

    gan = CycleGAN.from_settings(settings, size, torch.device(device))
    gen = torch.Generator().manual_seed(0)
    shape = (settings.batch_size, 1, size, size)
    a = (torch.rand(shape, generator=gen) * 2 - 1).to(device)
    b = (torch.rand(shape, generator=gen) * 2 - 1).to(device)
    for _ in range(2):  # warm-up: allocator, kernels, the pools' first fills
        gan.step(a, b)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    total = torch.zeros((), device=device)
    for _ in range(steps):
        total += gan.step(a, b)["cycle"]
    total.item()  # the loop waits for its losses once an epoch too
    return 2 * settings.batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    import pandas as pd
    import torch

    from chestxai.paths import shared_data_root
    from chestxai.synth.loop import train_synth
    from chestxai.synth.settings import SynthSettings
    from chestxai.testing import blob_dataset, write_tiny_cache

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=shared_data_root(), help="the shared real-data folder")
    ap.add_argument("--synthetic", action="store_true", help="blob images instead of PneumoniaMNIST")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="steps per round (a loop epoch has this many)")
    ap.add_argument(
        "--rounds", type=int, default=3, help="measured loop epochs; limit blocks before and after the loop"
    )
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        common = dict(
            epochs=1, max_steps=args.steps, batch_size=args.batch, ngf=args.ngf, ndf=args.ndf,
            device=args.device, threads=args.threads, run_dir=f"{tmp}/run", samples=2,
        )  # fmt: skip
        if args.synthetic:
            images, labels, _ = blob_dataset(400, size=args.size, seed=0)
            split = ["train"] * 300 + ["val"] * 50 + ["test"] * 50
            cache = write_tiny_cache(Path(tmp) / "cache", images, labels, ["Blob"], "binary", split=split)
            settings = SynthSettings(cache_dir=str(cache), domain_a="not:Blob", domain_b="Blob", **common)
            data = "synthetic blobs"
        else:
            root = args.data / "pneumoniamnist"
            if not root.is_dir():
                raise SystemExit(f"{root} is absent; pass --data or --synthetic")
            settings = SynthSettings(
                source="medmnist", root=str(root), size=args.size, cache=f"{tmp}/cache",
                domain_a="not:Pneumonia", domain_b="Pneumonia", **common,
            )  # fmt: skip
            data = f"PneumoniaMNIST at {args.size} px"
        limits = [
            limit_images_per_s(settings, args.size, args.steps, args.device) for _ in range(args.rounds)
        ]
        run = train_synth(dataclasses.replace(settings, epochs=args.rounds + 1), progress=False)
        loops = [float(x) for x in pd.read_csv(run / "history.csv")["train_images_per_s"].iloc[1:]]
        limits += [
            limit_images_per_s(settings, args.size, args.steps, args.device) for _ in range(args.rounds)
        ]
    out = {
        "data": data,
        "size": args.size,
        "batch": args.batch,
        "steps": args.steps,
        "rounds": args.rounds,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "blocks": settings.blocks(args.size),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "loop_images_per_s": round(max(loops), 2),
        "limit_images_per_s": round(max(limits), 2),
        "ratio": round(max(loops) / max(limits), 3),
        "median_ratio": round(statistics.median(loops) / statistics.median(limits), 3),
        "loop_rounds": [round(x, 2) for x in loops],
        "limit_rounds": [round(x, 2) for x in limits],
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Grad-CAM throughput against its ceiling: the model's own forward + backward on random tensors.

For each model and batch size it prints images/s of

* ``fwd+bwd``: ``model(x).sum().backward()`` with every parameter requiring gradients, i.e. a
  training step without the optimizer (the ceiling the design notes name), and
* ``gradcam``: ``chestxai.explain.Explainer(model, "gradcam").explain(x, targets)``: hooks, one
  forward, one backward, the library's CAM arithmetic, resizing to the input size, hook release,

and their ratio (target >= 0.8 at batch 32). Grad-CAM may exceed 1: it asks for gradients at the
target layer only (parameters frozen for the call, the input made to require gradients), so the
weight gradients a training backward computes are skipped.

    .venv/bin/python benchmarks/explain_throughput.py                     # resnet18, densenet121 at 224 px
    .venv/bin/python benchmarks/explain_throughput.py --models resnet18 --batch-sizes 1 8 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from chestxai.explain import Explainer
from chestxai.models import create_model


def _time(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN kernels, first-call overheads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str, batch: int, size: int, repeats: int, device: str) -> dict:
    torch.manual_seed(0)
    model = create_model(name, num_labels=14, task="multilabel", input_size=size).to(device).eval()
    x = torch.randn(batch, 1, size, size, device=device)
    targets = [i % 14 for i in range(batch)]

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    explainer = Explainer(model, "gradcam")

    def gradcam():
        explainer.explain(x, targets)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    t_ref = _time(fwd_bwd, repeats)
    model.zero_grad(set_to_none=True)
    t_cam = _time(gradcam, repeats)
    return {
        "model": name,
        "batch": batch,
        "fwd_bwd_img_s": batch / t_ref,
        "gradcam_img_s": batch / t_cam,
        "ratio": t_ref / t_cam,
        "layer": explainer.layer_name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "densenet121"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
        f"{args.size} px, median of {args.repeats} after a warm-up"
    )
    print(f"{'model':14s} {'batch':>5s} {'fwd+bwd img/s':>14s} {'gradcam img/s':>14s} {'ratio':>6s}  layer")
    for name in args.models:
        for batch in args.batch_sizes:
            r = bench(name, batch, args.size, args.repeats, args.device)
            print(
                f"{r['model']:14s} {r['batch']:5d} {r['fwd_bwd_img_s']:14.2f} {r['gradcam_img_s']:14.2f} "
                f"{r['ratio']:6.2f}  {r['layer']}",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""The GPU suite's sections and what they share: sizes, ratios, the synthetic cache (docs/GPU_SUITE.md).

Split from ``gpu_suite.py`` so that each file holds one concept: this one *measures* (each
``section_*`` fills its figures and ratios, every ratio a measured rate over its limit measured in
the same run), the suite *runs* them under budgets and reports. The section list and the targets
are in ``gpu_suite.py``'s docstring.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks' measuring functions
import serve_load  # noqa: E402
import synth_throughput  # noqa: E402
import train_throughput  # noqa: E402

log = logging.getLogger("gpu_suite")
FORMAT = 1
FINDINGS = 14  # a multi-label head the size of NIH ChestX-ray14's


@dataclass(frozen=True)
class Size:
    """How big each section runs: ``full`` for one H100/H200 (~8 min), ``tiny`` for 2 CPU cores."""

    images: int  # synthetic cache rows
    px: int  # training / data / explain / mc image side
    batch: int  # training batch
    steps: int  # measured training steps per epoch (the loop's epoch 2)
    explain_batch: int
    mc_batch: int
    serve_requests: int
    serve_px: int
    gan_px: int
    gan_batch: int
    gan_ngf: int
    gan_steps: int
    budget_s: dict  # per section


FULL = Size(20_000, 224, 128, 30, 8, 64, 3000, 224, 256, 4, 64, 10, {
    "data": 30, "train": 240, "explain": 40, "mc": 15, "serve": 40, "cyclegan": 30, "ddp": 30,
})  # fmt: skip
TINY = Size(320, 32, 8, 3, 2, 8, 96, 32, 32, 1, 8, 2, {
    "data": 10, "train": 60, "explain": 20, "mc": 10, "serve": 30, "cyclegan": 10, "ddp": 15,
})  # fmt: skip
MODELS = ("resnet50", "densenet121")
NO_TINY_COMPILE = (
    "not run with --tiny: inductor takes minutes per model on 2 CPU cores (tests/train cover compile)"
)


def ratio(measured: float | None, limit: float | None, target: str, unit: str = "images/s", reason=None):
    """One documented ratio entry: a number, or None with the reason why not."""
    ok = reason is None and measured is not None and limit
    return {
        "ratio": round(measured / limit, 4) if ok else None,
        "measured": None if measured is None else round(float(measured), 3),
        "limit": None if limit is None else round(float(limit), 3),
        "unit": unit,
        "target": target,
        "reason": None if ok else (reason or "not measured"),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn: Callable[[], None], items: int, device: torch.device, repeats: int = 3) -> float:
    """Best ``items``/s over ``repeats`` calls after one warm-up (best: other processes only slow)."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return items / best


# ---- the synthetic cache ---------------------------------------------------------------------------
def build_cache(root: Path, size: Size) -> Path:
    """``size.images`` multi-label images through the real prepare writers; 90% train, 10% val."""
    from chestxai.testing import write_tiny_cache

    rng = np.random.default_rng(0)
    n, px = size.images, size.px
    images = np.empty((n, px, px), np.uint8)
    base = rng.integers(0, 256, (64, px, px), dtype=np.uint8)  # 64 textures, shifted per image
    for i in range(n):
        images[i] = np.roll(base[i % 64], i // 64, axis=1)
    labels = (rng.random((n, FINDINGS)) < 0.2).astype(np.float32)
    split = ["train" if i % 10 else "val" for i in range(n)]
    names = [f"finding{k}" for k in range(FINDINGS)]
    return write_tiny_cache(root / "cache", images, labels, names, "multilabel", split=split)


# ---- sections --------------------------------------------------------------------------------------
def section_train(ctx: dict, out: dict) -> None:
    """The real loop per model and variant, against the same step on random tensors."""
    from chestxai.config import load_config
    from chestxai.devices import choose_precision
    from chestxai.train.loop import train

    device, size, tiny = ctx["device"], ctx["size"], ctx["tiny"]
    mixed = choose_precision("on", device)  # bfloat16 (or float16 + GradScaler) where the device has it
    variants = {"float32": ("float32", False, "off")}
    if mixed.autocast:
        variants["amp"] = (mixed.name, False, "off")
    variants["channels_last"] = (mixed.name, True, "off")  # with mixed precision where there is one
    if not tiny:
        variants["compile"] = (mixed.name, True, "default")
    figures, ratios = out["figures"], out["ratios"]  # filled as measured: a budget stop keeps them
    for model in MODELS:  # the same keys on every machine: a variant not run says why
        if tiny:
            ratios[f"{model}.compile"] = ratio(None, None, ">= 0.95", reason=NO_TINY_COMPILE)
        if not mixed.autocast:
            ratios[f"{model}.amp"] = ratio(None, None, ">= 0.95", reason=mixed.why)
    for name, (precision, cl, comp) in variants.items():  # compile last: the longest to set up
        for model in MODELS:
            key = f"{model}.{name}"
            values = {
                "data.cache_dir": str(ctx["cache"]), "run_dir": str(ctx["tmp"] / f"run-{key}"),
                "data.size": size.px, "model.name": model, "train.epochs": 2, "train.batch_size": size.batch,
                "train.max_steps_per_epoch": size.steps, "train.device": str(device), "train.lr": 1e-4,
                "train.amp": "on" if precision != "float32" else "off",
                "train.channels_last": cl, "train.compile": comp,
            }  # fmt: skip
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            run = train(load_config(None, values=values), progress=False)
            loop = float(_last_history(run)["train_images_per_s"])
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
            limit = train_throughput.limit_images_per_s(
                model, FINDINGS, "multilabel", size.px, size.batch, size.steps, str(device),
                precision=precision, channels_last=cl, compile_mode=comp, warmup=2 if comp == "off" else 3,
            )  # fmt: skip
            ratios[key] = ratio(loop, limit, ">= 0.95")
            figures[key] = {
                "precision": precision,
                "channels_last": cl,
                "compile": comp,
                "peak_gpu_mib": peak,
            }
            ctx["fastest_loop"] = max(ctx.get("fastest_loop", 0.0), loop)


def _last_history(run: Path) -> dict:
    import pandas as pd

    return pd.read_csv(run / "history.csv").iloc[-1].to_dict()


def section_data(ctx: dict, out: dict) -> dict:
    """The loop's own data path, alone: batches as the loop gathers them, to the device, augmented."""
    from chestxai.data.augment import AugmentConfig
    from chestxai.data.cache import PreparedCache
    from chestxai.data.dataset import to_unit
    from chestxai.models.preprocess import to_input
    from chestxai.train.batches import epoch_order, iterate_batches

    device, size = ctx["device"], ctx["size"]
    cache = PreparedCache(ctx["cache"])
    preprocess = {"size": size.px, "mean": 0.5, "std": 0.25}
    rows = np.arange(min(len(cache), 40 * size.batch))  # 40 batches a pass: bounded on any machine
    epoch = [0]

    def one_epoch() -> None:
        order = epoch_order(rows, epoch[0], 0)
        for batch in iterate_batches(
            cache.images, cache.labels, order, size.batch, augment=AugmentConfig(), epoch=epoch[0]
        ):
            x = to_unit(batch.images.to(device, non_blocking=True), batch.params.to(device))
            to_input(x, preprocess)
            batch.targets.to(device, non_blocking=True)
        epoch[0] += 1

    n = len(rows) // size.batch * size.batch
    data_rate = rate(one_epoch, n, device, repeats=2)
    fastest = ctx.get("fastest_loop")
    why = None if fastest else "no training rate measured (train section failed or skipped)"
    return {
        "figures": {"images_per_s": round(data_rate, 1), "images": n, "px": size.px},
        "ratios": {
            "vs_fastest_training": ratio(data_rate, fastest, ">= 3", reason=why),
            # the loop is serial: each step waits batch/data_rate for a step of batch/loop_rate
            "step_share_waiting": ratio(fastest, data_rate, "< 0.05", unit="share", reason=why),
        },
    }


def section_explain(ctx: dict, out: dict) -> dict:
    """Grad-CAM for every finding of a batch two ways - the Explainer's one batched call of B x L
    maps (pytorch-grad-cam, NumPy arithmetic on the host) and ``gradcam_all_findings`` (one forward,
    one vmapped backward of all findings, arithmetic in torch on the device) - each against
    forward + backward of the batch and against pytorch-grad-cam's per-image, per-finding loop."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from chestxai.explain import Explainer
    from chestxai.explain.all_findings import gradcam_all_findings
    from chestxai.models import create_model

    device, size = ctx["device"], ctx["size"]
    b, px = size.explain_batch, size.px
    torch.manual_seed(0)
    model = create_model("densenet121", FINDINGS, "multilabel", input_size=px).to(device).eval()
    x = torch.randn(b, 1, px, px, device=device)

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    explainer = Explainer(model, "gradcam")
    xs, targets = x.repeat_interleave(FINDINGS, 0), list(range(FINDINGS)) * b

    def their_loop() -> None:  # what users write: one image, one finding at a time
        with GradCAM(model=model, target_layers=[explainer.layer]) as cam:
            for i in range(b):
                for k in range(FINDINGS):
                    cam(input_tensor=x[i : i + 1], targets=[ClassifierOutputTarget(k)])

    limit = rate(fwd_bwd, b, device)
    model.zero_grad(set_to_none=True)
    out["figures"].update(model="densenet121", batch=b, findings=FINDINGS, layer=explainer.layer_name)
    batched = rate(lambda: explainer.explain(xs, targets), b, device, repeats=2)
    out["ratios"]["vs_forward_backward"] = ratio(batched, limit, "report (B x findings maps per batch)")
    torch_path = rate(lambda: gradcam_all_findings(explainer, x), b, device, repeats=2)
    out["ratios"]["all_findings_vs_forward_backward"] = ratio(torch_path, limit, "report")
    loop = rate(their_loop, b, device, repeats=1)
    out["ratios"]["vs_pytorch_grad_cam_loop"] = ratio(batched, loop, ">= 10")
    out["ratios"]["all_findings_vs_pytorch_grad_cam_loop"] = ratio(torch_path, loop, ">= 10")
    return {}


def section_mc(ctx: dict, out: dict) -> dict:
    """MC dropout (30 passes, the library's sampler) against 30 plain forwards."""
    from chestxai.models import create_model
    from chestxai.uncertainty import predict_with_uncertainty

    device, size, passes = ctx["device"], ctx["size"], 30
    torch.manual_seed(0)
    model = create_model("resnet50", FINDINGS, "multilabel", dropout=0.3, input_size=size.px)
    model = model.to(device).eval()
    x = torch.randn(size.mc_batch, 1, size.px, size.px, device=device)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    single = rate(forward, size.mc_batch, device)
    mc = rate(
        lambda: predict_with_uncertainty(model, x, "mc-dropout", passes, seed=0), size.mc_batch, device, 2
    )
    return {
        "figures": {"model": "resnet50", "batch": size.mc_batch, "passes": passes},
        "ratios": {"vs_30_forwards": ratio(mc, single / passes, ">= 1 (head-only dropout: backbone once)")},
    }


def section_serve(ctx: dict, out: dict) -> dict:
    """``chestxai serve`` (its own process) at 32 loopback clients against its model's batched forward."""
    import asyncio
    import io

    import httpx
    from PIL import Image

    from chestxai.serve.models import load_served
    from chestxai.testing import write_tiny_run

    device, size = ctx["device"], ctx["size"]
    run, _ = write_tiny_run(ctx["tmp"] / "serve", "multilabel", FINDINGS, n=24, size=size.serve_px)
    served = load_served(run, device=str(device))
    limit = serve_load.forward_rate(
        served.model, served.preprocess, served.resize_to, 32, seconds=3.0, device=str(device)
    )
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512), dtype=np.uint8)).save(png, "PNG")
    port = serve_load.free_port()
    cmd = [sys.executable, "-m", "chestxai", "serve", str(run), "--port", str(port), "--max-queue", "1024",
           "--device", str(device)]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"chestxai serve exited {server.returncode}: {server.stderr.read()[-800:]}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        res = asyncio.run(serve_load.load(base, png.getvalue(), size.serve_requests, 32, 60.0))
    finally:
        server.terminate()
        server.wait(30)
    why = f"{res['errors']} of {res['requests']} requests failed" if res["errors"] else None
    return {
        "figures": {k: round(v, 2) for k, v in res.items()} | {"px": served.resize_to, "clients": 32},
        "ratios": {"vs_batched_forward": ratio(res["rps"], limit, "report", reason=why)},
    }


def section_cyclegan(ctx: dict, out: dict) -> dict:
    """The CycleGAN step (synth_throughput's limit: the step on random tensors) against the same
    network passes (6 generator and 6 discriminator forwards, both backwards) without optimisers,
    losses' bookkeeping or the fake pools."""
    from chestxai.synth.cyclegan import CycleGAN
    from chestxai.synth.settings import SynthSettings

    device, size = ctx["device"], ctx["size"]
    px, b = size.gan_px, size.gan_batch
    settings = SynthSettings(
        cache_dir=str(ctx["cache"]), domain_a="not:finding0", domain_b="finding0", batch_size=b,
        ngf=size.gan_ngf, ndf=size.gan_ngf, device=str(device), amp="off",
    )  # fmt: skip
    step = synth_throughput.limit_images_per_s(settings, px, size.gan_steps, str(device))
    gan = CycleGAN.from_settings(settings, px, device)
    g_ab, g_ba, d_a, d_b = gan.g["a2b"], gan.g["b2a"], gan.d["a"], gan.d["b"]
    a = torch.rand(b, 1, px, px, device=device) * 2 - 1
    c = torch.rand(b, 1, px, px, device=device) * 2 - 1

    def passes() -> None:
        fake_b, fake_a = g_ab(a), g_ba(c)
        g = g_ba(fake_b).mean() + g_ab(fake_a).mean() + g_ab(c).mean() + g_ba(a).mean()
        (g + d_b(fake_b).mean() + d_a(fake_a).mean()).backward()
        d = d_b(c).mean() + d_b(fake_b.detach()).mean() + d_a(a).mean() + d_a(fake_a.detach()).mean()
        d.backward()

    limit = rate(passes, 2 * b, device, repeats=size.gan_steps)
    return {
        "figures": {"px": px, "batch": b, "ngf": size.gan_ngf},
        "ratios": {"step_vs_forward_backward": ratio(step, limit, ">= 0.9")},
    }


def _ddp_worker(rank: int, world: int, port: int, device_type: str, size: Size, out: str) -> None:
    """One rank: DDP(resnet50) steps on random tensors; rank 0 writes its images/s to ``out``."""
    import torch.distributed as dist

    from chestxai.models import create_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")
    if device_type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        core = create_model("resnet50", FINDINGS, "multilabel", input_size=size.px).to(device)
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[rank] if device_type == "cuda" else None
        )
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(size.batch, 1, size.px, size.px, device=device)
        y = (torch.rand(size.batch, FINDINGS, device=device) > 0.5).float()

        def steps() -> None:
            for _ in range(size.steps):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        got = rate(steps, size.batch * size.steps * world, device, repeats=2)
        if rank == 0:
            Path(out).write_text(json.dumps({"images_per_s": got}))
    finally:
        dist.destroy_process_group()


def section_ddp(ctx: dict, out: dict) -> dict:
    """DDP world size 1 (and 2 with 2 GPUs) against the same steps without DDP, x world size."""
    import torch.multiprocessing as mp

    device, size = ctx["device"], ctx["size"]
    single = train_throughput.limit_images_per_s(
        "resnet50", FINDINGS, "multilabel", size.px, size.batch, size.steps, str(device)
    )
    worlds = [1] + ([2] if device.type == "cuda" and torch.cuda.device_count() >= 2 else [])
    ratios, figures = (
        {},
        {"backend": "nccl" if device.type == "cuda" else "gloo", "single_images_per_s": single},
    )
    for world in worlds:
        out = ctx["tmp"] / f"ddp{world}.json"
        port = serve_load.free_port()
        if world == 1:
            _ddp_worker(0, 1, port, device.type, size, str(out))
        else:
            mp.spawn(_ddp_worker, args=(world, port, device.type, size, str(out)), nprocs=world, join=True)
        got = json.loads(out.read_text())["images_per_s"]
        ratios[f"world{world}"] = ratio(got, single * world, ">= 0.9")
    if len(worlds) == 1:
        ratios["world2"] = ratio(None, None, ">= 0.9", reason="fewer than 2 GPUs here")
    return {"figures": figures, "ratios": ratios}

"""What a run *cost*: parameters, checkpoint size, training time and memory, inference speed.

Two kinds of numbers, kept apart because they travel differently:

* **recorded** at training time on the training machine (``history.csv``: ``epoch_time_s``,
  ``train_images_per_s``, ``peak_memory_mb``) and static facts of the files (parameter count,
  checkpoint size). Read every time, never measured here.
* **measured** here: inference images/s and latency at batch 1 and 32 through the run's real
  predict path (:meth:`chestxai.models.trained_run.TrainedRun.predict`: the checkpoint's preprocessing, the
  model, the probabilities; an ensemble predicts with all its members), on random uint8 images
  of the size the model reads from its cache. A speed belongs to a machine, so it is stored in
  ``RUN/cost.json`` under a key naming the device, its model name, the torch thread count and
  the torch version; a second ``compare`` on the same machine reads it back instead of
  re-measuring (``remeasure`` forces it; a changed checkpoint or protocol invalidates it).

Ensembles: parameters, checkpoint size and training time are sums over members, training
images/s combines members' per-image times (``1 / sum(1 / ips)``: every training image passes
through every member), peak memory is the largest member's (members train one after another),
and the inference speed is measured on the ensemble's own predict path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from chestxai.devices import pick_device
from chestxai.locks import LockedError, exclusive
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import read_ensemble
from chestxai.rundir.jsonfile import read_json, write_json
from chestxai.rundir.tables import read_history

log = logging.getLogger(__name__)

FORMAT = 1
MIB = 2**20
#: batch sizes of the inference columns (``infer_images_per_s_b1``, ``..._b32``)
BATCH_SIZES = (1, 32)
#: the cost columns of ``compare``'s table, in order (CSV/Markdown/HTML)
COST_COLUMNS = (
    "params",
    "checkpoint_mb",
    "train_time_s",
    "train_images_per_s",
    "peak_memory_mb",
    "peak_memory_of",
    "train_device",
    *(f"{k}_b{b}" for b in BATCH_SIZES for k in ("infer_images_per_s", "infer_latency_ms")),
    "speed_machine",
    "speed_note",
)


@dataclass(frozen=True)
class SpeedSettings:
    """The timing protocol: ``warmup`` untimed calls, then timed calls until at least
    ``min_repeats`` and ``min_seconds`` (or ``max_repeats``); the median call is reported."""

    batch_sizes: tuple[int, ...] = BATCH_SIZES
    warmup: int = 3
    min_repeats: int = 5
    max_repeats: int = 200
    min_seconds: float = 1.0
    seed: int = 0


DEFAULT_SPEED = SpeedSettings()


# --- machine ---------------------------------------------------------------------------------
def machine(device: str) -> dict[str, Any]:
    """Where a speed is measured: device, its name (CPU model or GPU), torch threads and version."""
    from chestxai.environment import capture_environment

    env = capture_environment(device)
    keep = ("device", "device_name", "torch_threads", "cuda", "python", "platform")
    out = {k: env[k] for k in keep if k in env}
    out["torch"] = env.get("packages", {}).get("torch", "unknown")
    return out


def machine_key(m: dict[str, Any]) -> str:
    """The label a measurement is stored and shown under, e.g.
    ``cpu: Intel(R) Xeon(R) ... , 2 threads, torch 2.9.1`` or ``cuda: NVIDIA H200, 16 threads, torch 2.9.1``."""
    return (
        f"{m.get('device')}: {m.get('device_name')}, {m.get('torch_threads')} threads, torch {m.get('torch')}"
    )


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block (0 = leave torch's default)."""
    import torch

    before = torch.get_num_threads()
    if threads and threads > 0:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- recorded / static costs -------------------------------------------------------------------
def members(run: RunDir) -> list[RunDir]:
    """An ensemble's member runs, or the run itself."""
    return [RunDir(m) for m in read_ensemble(run).members] if run.is_ensemble else [run]


def model_info(run: RunDir) -> tuple[str, int, float]:
    """Model name, parameter count (every parameter, trainable or frozen) and checkpoint size in
    MiB; an ensemble: ``ensemble(a+b)`` and the sums over its members."""
    from chestxai.models.trained_run import TrainedRun  # torch: only when comparing

    trained = TrainedRun.open(run, "cpu")
    names = [m.model_name for m in trained.members]
    params = sum(int(sum(p.numel() for p in model.parameters())) for model in trained.models)
    size = sum(m.path.stat().st_size for m in trained.members)
    name = "ensemble(" + "+".join(names) + ")" if run.is_ensemble else names[0]
    return name, params, size / MIB


def _trained_on(run: RunDir) -> tuple[str, str]:
    """(device type, device name) from the environment config.yaml records; unknown otherwise."""
    from chestxai.config import ENVIRONMENT_KEY, load_yaml_file

    try:
        env = (load_yaml_file(run.config) or {}).get(ENVIRONMENT_KEY) if run.config.exists() else None
    except (ValueError, AttributeError):
        env = None
    if not isinstance(env, dict):
        return "unknown", "unknown"
    return str(env.get("device", "unknown")), str(env.get("device_name", "unknown"))


def memory_kind(device: str) -> str:
    """What ``peak_memory_mb`` measures on a device (see ``chestxai.train.loop.peak_memory_mb``)."""
    if device.startswith("cuda"):
        return "GPU allocator peak"
    if device == "unknown":
        return "unknown device"
    return "CPU process peak RSS"


def train_cost(run: RunDir) -> dict[str, Any]:
    """``train_time_s`` (sum of ``epoch_time_s``), ``train_images_per_s`` (mean over epochs),
    ``peak_memory_mb`` (max over epochs) with what it measures, and the training device; NaN
    where ``history.csv`` (or a column of it) is missing. Ensembles combine members (module doc)."""
    times, speeds, peaks, kinds, devices = [], [], [], [], []
    for member in members(run):
        h = read_history(member)
        device, name = _trained_on(member)
        devices.append(name if device == "unknown" else f"{device}: {name}")
        if h is None or not len(h):
            for values in (times, speeds, peaks):
                values.append(np.nan)
            kinds.append("no history.csv")
            continue
        times.append(float(h["epoch_time_s"].sum()) if "epoch_time_s" in h else np.nan)
        speeds.append(float(h["train_images_per_s"].mean()) if "train_images_per_s" in h else np.nan)
        has_peak = "peak_memory_mb" in h and h["peak_memory_mb"].notna().any()
        peaks.append(float(h["peak_memory_mb"].max()) if has_peak else np.nan)
        kinds.append(memory_kind(device) if has_peak else "not recorded")
    speed = float(1.0 / np.sum(1.0 / np.asarray(speeds))) if len(speeds) > 1 else float(speeds[0])
    return {
        "train_time_s": float(np.sum(times)),
        "train_images_per_s": speed,
        "peak_memory_mb": float(np.max(peaks)),
        "peak_memory_of": "; ".join(dict.fromkeys(kinds)),
        "train_device": "; ".join(dict.fromkeys(devices)),
    }


# --- measured: inference speed ----------------------------------------------------------------
def measure_speed(
    predict: Callable[..., Any], image_size: int, device: str, settings: SpeedSettings | None = None
) -> dict[str, dict[str, float]]:
    """Time ``predict(images, batch_size=b, device=device)`` on random uint8 ``b x S x S`` images.

    Returns ``{"1": {"latency_ms", "images_per_s", "repeats"}, "32": ...}``: the median call's
    wall time (``predict`` returns CPU numpy arrays, so a GPU call is complete when it returns).
    """
    settings = settings or DEFAULT_SPEED
    rng = np.random.default_rng(settings.seed)
    out: dict[str, dict[str, float]] = {}
    for b in settings.batch_sizes:
        images = rng.integers(0, 256, size=(b, image_size, image_size), dtype=np.uint8)
        for _ in range(settings.warmup):
            predict(images, batch_size=b, device=device)
        seconds: list[float] = []
        start = time.perf_counter()
        while len(seconds) < settings.max_repeats and (
            len(seconds) < settings.min_repeats or time.perf_counter() - start < settings.min_seconds
        ):
            t0 = time.perf_counter()
            predict(images, batch_size=b, device=device)
            seconds.append(time.perf_counter() - t0)
        median = float(np.median(seconds))
        out[str(b)] = {
            "latency_ms": 1000.0 * median,
            "images_per_s": b / max(median, 1e-12),
            "repeats": len(seconds),
        }
    return out


def _fingerprint(run: RunDir) -> list[dict[str, Any]]:
    """What the measurement belongs to: each checkpoint's path, size and modification time."""
    out = []
    for member in members(run):
        st = member.require_checkpoint().stat()
        out.append(
            {"checkpoint": str(member.checkpoint.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        )
    return out


def read_cost(run: RunDir) -> dict[str, Any]:
    """``RUN/cost.json`` (``{"format", "measurements": {machine key: entry}}``), empty when absent
    or unreadable (it is a cache: a damaged one is measured again, with a warning)."""
    if not run.cost.is_file():
        return {"format": FORMAT, "measurements": {}}
    try:
        data = read_json(run.cost)
    except ValueError as exc:
        log.warning("%s; measuring again", exc)
        return {"format": FORMAT, "measurements": {}}
    if not isinstance(data, dict) or not isinstance(data.get("measurements"), dict):
        log.warning("%s is not a chestxai cost file; measuring again", run.cost)
        return {"format": FORMAT, "measurements": {}}
    return data


def inference_speed(
    run: RunDir,
    device: str = "auto",
    threads: int = 0,
    remeasure: bool = False,
    settings: SpeedSettings | None = None,
) -> tuple[dict[str, Any] | None, str, str]:
    """``(entry, machine key, note)``: the speed of ``run`` on this machine, from ``RUN/cost.json``
    when it holds a valid entry for this machine (same checkpoint, same protocol), else measured
    now and stored. ``entry`` is None (with the reason in ``note``) when the run directory is
    locked by another process (training, or another compare measuring it)."""
    device = str(pick_device(device))  # the device a speed is measured and recorded under
    settings = settings or DEFAULT_SPEED
    with torch_threads(threads):
        m = machine(device)
        key = machine_key(m)
        protocol = asdict(settings)
        protocol["batch_sizes"] = list(settings.batch_sizes)
        fingerprint = _fingerprint(run)
        cached = read_cost(run)["measurements"].get(key)
        if (
            not remeasure
            and isinstance(cached, dict)
            and cached.get("fingerprint") == fingerprint
            and cached.get("protocol") == protocol
        ):
            return cached, key, f"cached in cost.json ({cached.get('measured_at', '?')})"
        try:
            with exclusive(run.root, "run directory"):
                from chestxai.models.trained_run import TrainedRun

                trained = TrainedRun.open(run, device)
                size = trained.image_size  # the uint8 images the model is given: its cache's rows

                def predict(images, batch_size: int, device: str = device):  # opened on ``device``
                    return trained.predict(images, batch_size=batch_size)

                log.info("measuring inference speed of %s on %s", run.root, key)
                batches = measure_speed(predict, size, device, settings)
                entry = {
                    "machine": m,
                    "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "pid": os.getpid(),
                    "image_size": size,
                    "fingerprint": fingerprint,
                    "protocol": protocol,
                    "batches": batches,
                }
                data = read_cost(run)
                data["format"] = FORMAT
                data["measurements"][key] = entry
                write_json(data, run.cost)
        except LockedError:
            return None, key, "not measured: the run directory is in use by another process"
    return entry, key, "measured now"


def speed_columns(entry: dict[str, Any] | None) -> dict[str, float]:
    """``infer_images_per_s_b1, infer_latency_ms_b1, ..._b32`` from a cost.json entry (NaN if none)."""
    out = {}
    for b in BATCH_SIZES:
        got = ((entry or {}).get("batches") or {}).get(str(b)) or {}
        out[f"infer_images_per_s_b{b}"] = float(got.get("images_per_s", np.nan))
        out[f"infer_latency_ms_b{b}"] = float(got.get("latency_ms", np.nan))
    return out


def cost_row(
    run: RunDir,
    speed: bool = True,
    device: str = "auto",
    threads: int = 0,
    remeasure: bool = False,
    settings: SpeedSettings | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(model name, {cost column: value})`` for one run (see :data:`COST_COLUMNS`)."""
    name, params, ckpt_mb = model_info(run)
    row: dict[str, Any] = {"params": params, "checkpoint_mb": ckpt_mb, **train_cost(run)}
    if speed:
        entry, key, note = inference_speed(run, device, threads, remeasure, settings)
    else:
        entry, key, note = None, "", "not measured (--no-speed)"
    row.update(speed_columns(entry))
    row["speed_machine"], row["speed_note"] = key, note
    return name, {c: row[c] for c in COST_COLUMNS}

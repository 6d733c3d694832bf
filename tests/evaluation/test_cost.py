"""Cost columns: static facts equal the files, training figures come from history.csv, inference
speed goes through the predict path once per machine and is read back from RUN/cost.json."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import yaml

from chestxai.evaluation import cost
from chestxai.locks import exclusive
from chestxai.models import create_model
from chestxai.models.checkpoint import load_model, make_checkpoint, read_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.rundir.ensemble import EnsembleManifest, write_ensemble
from chestxai.rundir.tables import read_history, write_history
from chestxai.testing import write_tiny_run

QUICK = cost.SpeedSettings(warmup=1, min_repeats=1, max_repeats=1, min_seconds=0.0)
SIZE = 16  # small images: a real measurement of resnet18 takes well under a second


@pytest.fixture(autouse=True)
def quick_speed(monkeypatch):
    monkeypatch.setattr(cost, "DEFAULT_SPEED", QUICK)


def with_peak_memory(run_dir, peaks, device: str | None = None, name: str = "NVIDIA Test GPU"):
    """The history the training loop writes now (peak_memory_mb) and the environment config.yaml records."""
    run = RunDir(run_dir)
    h = read_history(run)
    h["peak_memory_mb"] = peaks
    write_history(run, h.to_dict("records"))
    if device is not None:
        run.config.write_text(yaml.safe_dump({"environment": {"device": device, "device_name": name}}))
    return run


@pytest.fixture
def run(tmp_path):
    path, _ = write_tiny_run(tmp_path / "a", "binary", 1, n=16, size=SIZE)
    return with_peak_memory(path, [120.0, 250.5, 180.0], device="cuda")


def test_static_and_training_columns_equal_the_files(run):
    name, row = cost.cost_row(run, speed=False)
    model, _ = load_model(run.checkpoint)
    assert name == "resnet18"
    assert row["params"] == sum(p.numel() for p in model.parameters())
    assert row["checkpoint_mb"] == pytest.approx(os.path.getsize(run.checkpoint) / 2**20)
    history = read_history(run)
    assert row["train_time_s"] == pytest.approx(history["epoch_time_s"].sum()) == pytest.approx(4.5)
    assert row["train_images_per_s"] == pytest.approx(history["train_images_per_s"].mean())
    assert row["peak_memory_mb"] == 250.5 and row["peak_memory_of"] == "GPU allocator peak"
    assert row["train_device"] == "cuda: NVIDIA Test GPU"
    assert list(row) == list(cost.COST_COLUMNS)


def test_cpu_training_and_missing_records_are_labelled(tmp_path):
    path, _ = write_tiny_run(tmp_path / "cpu", "binary", 1, n=16)
    with_peak_memory(path, [90.0, 95.0, 93.0], device="cpu", name="Intel Xeon")
    assert cost.train_cost(RunDir(path))["peak_memory_of"] == "CPU process peak RSS"
    bare, _ = write_tiny_run(tmp_path / "bare", "binary", 1, n=16, history=False)
    row = cost.train_cost(RunDir(bare))
    assert np.isnan(row["train_time_s"]) and np.isnan(row["peak_memory_mb"])
    assert row["peak_memory_of"] == "no history.csv" and row["train_device"] == "unknown"


def test_no_speed_leaves_the_columns_empty_with_the_reason(run):
    _, row = cost.cost_row(run, speed=False)
    assert np.isnan(row["infer_images_per_s_b1"]) and np.isnan(row["infer_latency_ms_b32"])
    assert "--no-speed" in row["speed_note"] and row["speed_machine"] == ""
    assert not run.cost.exists()


def test_measure_speed_times_the_given_predict_on_random_images():
    seen = []

    def predict(images, batch_size, device):
        seen.append((images.shape, images.dtype, batch_size, device))
        return np.zeros((len(images), 1), np.float32)

    settings = cost.SpeedSettings(warmup=2, min_repeats=3, max_repeats=3, min_seconds=0.0)
    out = cost.measure_speed(predict, 24, "cpu", settings)
    assert set(out) == {"1", "32"}
    assert seen.count(((1, 24, 24), np.uint8, 1, "cpu")) == 5  # 2 warm-up + 3 timed
    assert seen.count(((32, 24, 24), np.uint8, 32, "cpu")) == 5
    for b, entry in out.items():
        assert entry["repeats"] == 3
        assert entry["images_per_s"] == pytest.approx(int(b) / (entry["latency_ms"] / 1000))


def test_speed_is_measured_once_per_machine_and_cached(run, monkeypatch):
    calls = []
    real = cost.measure_speed

    def counting(predict, size, device, settings=None):  # really timed the first time only
        calls.append(size)
        return real(predict, size, device, settings) if len(calls) == 1 else {}

    monkeypatch.setattr(cost, "measure_speed", counting)
    first, key, note = cost.inference_speed(run, device="cpu")
    assert note == "measured now" and calls == [SIZE]  # the run's cache size
    stored = json.loads(run.cost.read_text())
    assert list(stored["measurements"]) == [key] and key.startswith("cpu: ")
    assert f"{stored['measurements'][key]['machine']['torch_threads']} threads" in key
    again, key2, note2 = cost.inference_speed(run, device="cpu")
    assert calls == [SIZE] and key2 == key and note2.startswith("cached in cost.json")
    assert again["batches"] == first["batches"]
    _, row = cost.cost_row(run, device="cpu")
    assert calls == [SIZE] and row["infer_images_per_s_b1"] == first["batches"]["1"]["images_per_s"]
    cost.inference_speed(run, device="cpu", remeasure=True)
    assert len(calls) == 2

    # another machine gets its own entry; the first one is kept
    monkeypatch.setattr(cost, "machine", lambda device: {"device": "cpu", "device_name": "Other CPU"})
    cost.inference_speed(run, device="cpu")
    assert len(calls) == 3 and len(json.loads(run.cost.read_text())["measurements"]) == 2


def test_a_changed_checkpoint_or_protocol_is_measured_again(run, monkeypatch):
    calls = []
    monkeypatch.setattr(cost, "measure_speed", lambda *a, **k: calls.append(1) or {})
    cost.inference_speed(run, device="cpu")
    cost.inference_speed(run, device="cpu")
    assert len(calls) == 1
    st = run.checkpoint.stat()
    os.utime(run.checkpoint, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # retrained (--force)
    cost.inference_speed(run, device="cpu")
    assert len(calls) == 2
    cost.inference_speed(
        run, device="cpu", settings=cost.SpeedSettings(warmup=0, min_repeats=1, min_seconds=0)
    )
    assert len(calls) == 3


def test_a_damaged_cost_file_is_measured_again(run, monkeypatch):
    monkeypatch.setattr(
        cost, "measure_speed", lambda *a, **k: {"1": {"images_per_s": 5.0, "latency_ms": 200.0}}
    )
    run.cost.write_text("{not json")
    entry, _, note = cost.inference_speed(run, device="cpu")
    assert note == "measured now" and entry["batches"]["1"]["images_per_s"] == 5.0
    assert json.loads(run.cost.read_text())["format"] == 1


def test_a_locked_run_is_not_measured(run):
    with exclusive(run.root, "run directory"):
        entry, _, note = cost.inference_speed(run, device="cpu")
    assert entry is None and "in use" in note and not run.cost.exists()


def test_an_ensemble_sums_its_members_and_is_timed_as_one(run, tmp_path, monkeypatch):
    timed = []

    def one_call(predict, size, device, settings=None):  # the real predict path, called once
        timed.append(predict(np.zeros((2, size, size), np.uint8), batch_size=2, device=device))
        return {"32": {"images_per_s": 7.0, "latency_ms": 32 / 7.0 * 1000}}

    monkeypatch.setattr(cost, "measure_speed", one_call)
    b = tmp_path / "b"
    shutil.copytree(run.root, b)
    ckpt = read_checkpoint(b / "checkpoint.pt")
    torch.manual_seed(1)
    model = create_model("resnet34", num_labels=1, task="binary", input_size=SIZE)
    save_atomic(
        make_checkpoint(model, ckpt["label_names"], ckpt["preprocess"], ckpt["config"]), b / "checkpoint.pt"
    )
    with_peak_memory(b, [300.0, 310.0, 305.0], device="cuda")
    ens = RunDir(tmp_path / "ens")
    ens.root.mkdir()
    write_ensemble(ens, EnsembleManifest([run.root, b], [0.5, 0.5], "binary", ["Pneumonia"], None, {}))
    name, row = cost.cost_row(ens, device="cpu")
    members = [cost.cost_row(RunDir(m), speed=False)[1] for m in (run.root, b)]
    assert name == "ensemble(resnet18+resnet34)"
    assert row["params"] == sum(m["params"] for m in members)
    assert row["checkpoint_mb"] == pytest.approx(sum(m["checkpoint_mb"] for m in members))
    assert row["train_time_s"] == pytest.approx(9.0)
    assert row["train_images_per_s"] == pytest.approx(1 / (1 / 105.0 + 1 / 105.0))
    assert row["peak_memory_mb"] == 310.0
    assert row["infer_images_per_s_b32"] == 7.0 and ens.cost.exists()
    members_probs = [load_model(m / "checkpoint.pt")[0] for m in (run.root, b)]
    x = torch.full((2, 1, SIZE, SIZE), (0.0 - 0.5) / 0.25)  # black images, normalised as the checkpoints say
    with torch.no_grad():
        expected = sum(0.5 * m.probabilities(m(x)).numpy() for m in members_probs)
    np.testing.assert_allclose(timed[0], expected, rtol=1e-4, atol=1e-6)  # the ensemble's own predict path
    assert not (b / "cost.json").exists()

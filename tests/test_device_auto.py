"""``--device auto`` works on every command that has ``--device``, on this CPU machine.

``--help`` offered ``auto`` everywhere, but ``explain RUN --device auto`` ended in a raw torch
``RuntimeError``: each stage resolved the name its own way. Now :func:`chestxai.devices.pick_device`
is the one resolver; this file runs each command with ``auto`` on tiny inputs. The list of commands
comes from the parser, so a new command with ``--device`` fails here until it is listed.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from chestxai.cli import build_parser, main
from chestxai.devices import pick_device
from chestxai.testing import write_tiny_run

AUTO = ["--device", "auto"]
#: commands run below with auto on a tiny run (the argv builders take the fixture's run and tmp_path)
FAST = {
    "evaluate": lambda run, tmp: ["evaluate", str(run), "--n-boot", "10", "--no-figures", "--no-progress"],
    "explain": lambda run, tmp: ["explain", str(run), "--method", "gradcam", "--limit", "2", "--no-progress"],
    "uncertainty": lambda run, tmp: [
        "uncertainty", str(run), "--method", "tta", "--passes", "2", "--n-boot", "10", "--gallery", "0",
        "--no-figures", "--no-progress",
    ],
    "predict": lambda run, tmp: ["predict", str(run), "--images", str(_png(tmp)), "--out", str(tmp / "p.csv")],
    "compare": lambda run, tmp: ["compare", str(run), str(run), "--out", str(tmp / "cmp"), "--n-boot", "10",
                                 "--no-progress"],
    "serve": lambda run, tmp: ["serve", str(run)],
    "train": lambda run, tmp: [
        "train", "--run-dir", str(tmp / "trained"), "--epochs", "1", "--batch-size", "16", "--no-progress",
        "--set", f"data.cache_dir={_cache(run)}", "--set", "train.threads=1", "--set", "model.name=resnet18",
        "--set", "model.input_size=32",
    ],
}  # fmt: skip
#: commands that hand ``--device`` to a heavier stage (training a classifier or a CycleGAN, a study,
#: a benchmark) where it goes through the same pick_device; not run here to keep this file fast,
#: listed so that a new command with ``--device`` cannot go unnoticed
NOT_HERE = {
    "tune": "tune trials are `train` runs: train.device goes through pick_device (tests/tune)",
    "quickstart": "train + evaluate with train.device (tests/test_cli_train_flags.py checks the hand-over)",
    "experiment": "train + evaluate per cell with the command's device",
    "synth train": "CycleGAN training: synth/loop.py calls pick_device",
    "synth generate": "commands/_synth_outputs.py calls pick_device",
    "synth evaluate": "commands/_synth_outputs.py calls pick_device; the classifier is a TrainedRun",
    "bench lesions": "bench/run.py calls pick_device and opens the run with explain's opener",
}


def _png(tmp):
    path = tmp / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)).save(path)
    return path


def _cache(run):
    from chestxai.models.trained_run import TrainedRun

    return TrainedRun.open(run, "cpu").cache_dir


def device_commands() -> set[str]:
    """Every (sub)command whose parser has ``--device``, as ``"synth train"``."""
    found = set()

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*prefix, name))
        if "--device" in parser._option_string_actions:
            found.add(" ".join(prefix))

    walk(build_parser(), ())
    return found


def test_every_command_with_device_is_listed():
    assert device_commands() == set(FAST) | set(NOT_HERE)


def test_auto_is_this_machines_device_and_cuda_elsewhere_is_one_error():
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(pick_device("auto")) == expected == str(pick_device(None))
    if not torch.cuda.is_available():
        with pytest.raises(
            ValueError, match="--device cuda: CUDA is not available here; use --device cpu or auto"
        ):
            pick_device("cuda")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("auto")
    run, _ = write_tiny_run(root / "a", "binary", 1, n=48, patient_id=[f"p{i // 2}" for i in range(48)])
    return run


@pytest.mark.parametrize("command", sorted(FAST))
def test_command_runs_with_device_auto(command, tiny_run, tmp_path, monkeypatch, capsys):
    if command == "compare":  # an evaluated run; its speed measured once through the real predict path
        from chestxai.evaluation import cost, evaluate_run

        evaluate_run(tiny_run, n_boot=10, figures=False)

        def once(predict, size, device, settings=None):
            predict(np.zeros((1, size, size), np.uint8), batch_size=1, device=device)
            return {"1": {"images_per_s": 1.0, "latency_ms": 1.0, "repeats": 1}}

        monkeypatch.setattr(cost, "measure_speed", once)
    if command == "serve":
        uvicorn = pytest.importorskip("uvicorn")
        served = {}
        monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app))
    argv = FAST[command](tiny_run, tmp_path) + AUTO
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    if command == "serve":
        assert served["app"] is not None
    if command == "explain":
        assert (tiny_run / "explain_metrics.json").is_file()

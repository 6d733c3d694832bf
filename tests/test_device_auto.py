"""``--device auto`` works on every command that has ``--device``, on this CPU machine.

``--help`` offered ``auto`` everywhere, but ``explain RUN --device auto`` ended in a raw torch
``RuntimeError``: each stage resolved the name its own way. Now :func:`chestxai.devices.pick_device`
is the one resolver; this file runs each command with ``auto`` on tiny inputs (those that train a
model, a study, a CycleGAN or a benchmark are marked slow: one step of one epoch). The list of commands
comes from the parser, so a new command with ``--device`` fails here until it is listed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from chestxai.cli import build_parser, main
from chestxai.devices import pick_device
from chestxai.evaluation.cost import torch_threads
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
    "scorecard": lambda run, tmp: [
        "scorecard", str(run), "--methods", "gradcam", "--layers", "layer3", "--limit", "4", "--sanity-limit", "2",
        "--n-boot", "10", "--out", str(tmp / "card"), "--no-progress",
    ],
    "train": lambda run, tmp: [
        "train", "--run-dir", str(tmp / "trained"), "--epochs", "1", "--batch-size", "16", "--no-progress",
        "--set", f"data.cache_dir={_cache(run)}", "--set", "train.threads=1", "--set", "model.name=resnet18",
        "--set", "model.input_size=32",
    ],
}  # fmt: skip
#: commands that hand ``--device`` to a heavier stage (training a classifier or a CycleGAN, a study,
#: a benchmark), run below with auto on the smallest inputs they accept (1 epoch, 1 step, a few
#: images); marked slow. The builders take a :class:`Tiny` (the tiny run, its cache, tmp_path).
SLOW = {
    "tune": lambda t: [
        "tune", "--config", str(t.recipe()), "--space", str(t.space()), "--trials", "1", "--name", "study",
        "--run-dir", str(t.tmp / "study"), "--startup-trials", "1", "--n-boot", "10", "--no-progress",
    ],
    "quickstart": lambda t: [
        "quickstart", "--run-dir", str(t.tmp / "qs"), "--epochs", "1", "--explain-limit", "2", "--no-progress",
        *t.sets(),
    ],
    "experiment": lambda t: ["experiment", str(t.experiment()), "--out", str(t.tmp / "exp"), "--no-progress"],
    "synth train": lambda t: [
        "synth", "train", "--cache-dir", str(t.cache), "--domain-a", "not:Pneumonia", "--domain-b", "Pneumonia",
        "--run-dir", str(t.tmp / "synth"), "--ngf", "4", "--ndf", "4", "--blocks", "1", "--epochs", "1",
        "--max-steps", "1", "--batch-size", "2", "--threads", "1", "--no-progress",
    ],
    "synth generate": lambda t: [
        "synth", "generate", str(t.synth_run()), "--direction", "a2b", "--n", "2", "--out", str(t.tmp / "gen"),
        "--no-progress",
    ],
    "synth evaluate": lambda t: [
        "synth", "evaluate", str(t.synth_run()), "--classifier", str(t.run), "--n", "4", "--gallery", "1",
        "--c2st-epochs", "1", "--direction", "a2b", "--no-progress",
    ],
    "bench lesions": lambda t: [
        "bench", "lesions", "--source", "folder", "--root", str(t.backgrounds()), "--out", str(t.tmp / "bench"),
        "--cache", str(t.tmp / "bench-cache"), "--size", "32", "--backgrounds", "20", "--variants", "2",
        "--epochs", "1", "--methods", "gradcam", "--layers", "layer3", "--explain-limit", "4",
        "--faithfulness-limit", "0", "--sanity-limit", "0", "--threads", "1", "--no-progress",
    ],
}  # fmt: skip
#: recipe keys that make a training run one step of one epoch on the tiny cache
TINY_TRAIN = {"train.epochs": 1, "train.max_steps_per_epoch": 1, "train.batch_size": 16, "train.threads": 1}


@dataclass
class Tiny:
    """The inputs of a slow command: the tiny classifier run, its cache, and files made on demand."""

    run: Path
    cache: Path
    tmp: Path

    def sets(self) -> list[str]:
        """``--set`` flags: the shipped recipe trained one step on the tiny cache."""
        values = {"data.cache_dir": str(self.cache), **TINY_TRAIN}
        return [word for key, value in values.items() for word in ("--set", f"{key}={value}")]

    def recipe(self) -> Path:
        path = self.tmp / "recipe.yaml"
        path.write_text(
            f"name: tiny\ndata: {{source: synthetic, cache_dir: '{self.cache}', size: 32}}\n"
            "model: {name: resnet18}\ntrain: {epochs: 1, batch_size: 16, max_steps_per_epoch: 1, threads: 1}\n"
        )
        return path

    def space(self) -> Path:
        path = self.tmp / "space.yaml"
        path.write_text("train.lr: {log_uniform: [1e-4, 1e-1]}\n")
        return path

    def experiment(self) -> Path:
        doc = {
            "name": "tiny",
            "set": {**TINY_TRAIN, "data.cache_dir": str(self.cache)},
            "evaluate": {"n_boot": 10},
            "compare": {"n_boot": 10, "speed": False},
            "runs": [{"name": "a", "recipe": "pneumoniamnist_resnet18"}],
        }
        path = self.tmp / "tiny.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def synth_run(self) -> Path:
        """A CycleGAN run trained one step with 4-filter networks (through the Python API, on cpu)."""
        from chestxai.synth.loop import train_synth
        from chestxai.synth.settings import SynthSettings

        settings = SynthSettings(
            cache_dir=str(self.cache), run_dir=str(self.tmp / "synth-run"), domain_a="not:Pneumonia",
            domain_b="Pneumonia", ngf=4, ndf=4, n_blocks=1, epochs=1, max_steps=1, batch_size=2, threads=1,
            device="cpu",
        )  # fmt: skip
        return Path(train_synth(settings, progress=False))

    def backgrounds(self) -> Path:
        """20 noise PNGs in a class-per-folder tree (what ``--source folder`` reads)."""
        rng = np.random.default_rng(1)
        for i in range(20):
            folder = self.tmp / "xrays" / ("NORMAL" if i % 2 else "PNEUMONIA")
            folder.mkdir(parents=True, exist_ok=True)
            image = rng.integers(40, 200, (64, 64), dtype=np.uint8)
            Image.fromarray(image).save(folder / f"img{i:02d}.png")
        return self.tmp / "xrays"


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


#: commands run with auto in their own tests, where what they need is (a DICOMweb server: Orthanc)
ELSEWHERE = {"dicomweb": "tests/dicomweb/test_orthanc_roundtrip.py"}


def test_every_command_with_device_is_listed():
    assert device_commands() == set(FAST) | set(SLOW) | set(ELSEWHERE)


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


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(SLOW))
def test_heavier_command_runs_with_device_auto(command, tiny_run, tmp_path, capsys):
    """The command's own flag handling, device resolution and work, for real, on tiny inputs."""
    if command == "tune":
        pytest.importorskip("optuna", reason="chestxai tune needs Optuna: pip install 'chestxai[tune]'")
    tiny = Tiny(tiny_run, _cache(tiny_run), tmp_path)
    argv = SLOW[command](tiny) + AUTO
    with torch_threads(1):  # the suite shares two cores
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err

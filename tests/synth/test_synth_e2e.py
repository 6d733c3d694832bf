"""Real images end to end through the command line: ``synth train`` -> ``synth generate`` ->
``data summary`` / ``prepare`` on the generated folder -> ``synth evaluate`` (every artefact), and
the bad inputs a user meets first."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chestxai.cli import main
from chestxai.rundir import GeneratedDir, SynthRunDir
from chestxai.synth.realism import GALLERY_KINDS
from chestxai.testing import write_tiny_cache

from .tiny_synth import one_thread, tiny_classifier  # noqa: F401 (one_thread: autouse)

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@pytest.fixture(scope="module")
def pmnist(shared_data):
    root = shared_data / "pneumoniamnist"
    if not (root / "pneumoniamnist.npz").is_file():
        pytest.skip(f"{root}/pneumoniamnist.npz is absent")
    return root


def test_train_generate_evaluate_on_real_images(pmnist, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHESTXAI_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "synth"
    train = ["synth", "train", "--source", "medmnist", "--root", str(pmnist), "--size", "32",
             "--domain-a", "not:Pneumonia", "--domain-b", "Pneumonia", "--run-dir", str(run), "--epochs", "1",
             "--max-steps", "3", "--batch-size", "2", "--ngf", "4", "--ndf", "4", "--blocks", "1",
             "--threads", "1", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(train) == 0

    out = tmp_path / "generated"
    gen = ["synth", "generate", str(run), "--direction", "b2a", "--n", "12", "--out", str(out), "--seed", "1",
           "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(gen) == 0
    manifest = pd.read_csv(GeneratedDir(out).manifest, dtype=str)
    assert len(manifest) == 12 and set(manifest["label"]) == {"not:Pneumonia"}
    assert set(manifest["Pneumonia"]) == {"0"} and set(manifest["seed"]) == {"1"}
    assert all((out / p).is_file() for p in manifest["path"])
    capsys.readouterr()
    assert main(["data", "summary", "--source", "csv", "--root", str(out)]) == 0
    assert "12 of 12 on disk" in capsys.readouterr().out
    assert main(["prepare", "--source", "csv", "--root", str(out), "--size", "32", "--out",
                 str(tmp_path / "prepared"), "--no-progress"]) == 0  # fmt: skip

    clf = tiny_classifier(tmp_path / "clf")
    ev = ["synth", "evaluate", str(run), "--classifier", str(clf), "--n", "16", "--gallery", "2",
          "--c2st-epochs", "2", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(ev) == 0
    rd = SynthRunDir(run)
    m = json.loads(rd.metrics.read_text())
    for key in ("two_sample", "fid", "kid", "label_consistency", "cycle_ssim", "extractor", "gallery"):
        assert m[key], key
    for d in ("a2b", "b2a"):
        assert m["two_sample"][d]["n_test"] == 16 and m["cycle_ssim"][d]["n"] == 16
        assert np.isfinite(m["fid"][d]["value"])
    assert len(m["gallery"]) == 4
    for e in m["gallery"]:
        assert set(e["files"]) == set(GALLERY_KINDS)
        assert all((run / p).is_file() for p in e["files"].values())
    page = rd.report.read_text()
    assert "chestxai synthesis report" in page and "Gallery" in page and "not comparable" in page
    for artefact in (rd.checkpoint, rd.history, rd.config, rd.splits):
        assert artefact.is_file()


def test_bad_input_through_the_cli(pmnist, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHESTXAI_CACHE", str(tmp_path / "cache"))
    # an empty domain (synth-core's check): every image of this cache is positive
    images = np.random.default_rng(0).integers(0, 255, (12, 32, 32), dtype=np.uint8)
    cache = write_tiny_cache(tmp_path / "c", images, np.ones((12, 1), np.float32), ["Pneumonia"], "binary",
                             split=["train"] * 8 + ["val"] * 2 + ["test"] * 2)  # fmt: skip
    code = main(["synth", "train", "--cache-dir", str(cache), "--domain-a", "not:Pneumonia", "--domain-b",
                 "Pneumonia", "--run-dir", str(tmp_path / "empty"), "--epochs", "1", "--max-steps", "1",
                 "--ngf", "4", "--ndf", "4", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "empty" in err and len(err.strip().splitlines()) == 1
    # a classifier run is not a synthesis run
    clf = tiny_classifier(tmp_path / "clf")
    code = main(
        ["synth", "generate", str(clf), "--direction", "a2b", "--n", "2", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a chestxai synthesis checkpoint" in err

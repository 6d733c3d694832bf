"""``export``, ``predict``, ``explain``, ``report`` and ``serve`` refuse a run whose training lock is
held, in one line (issue 20, item 22: ``explain`` wrote into a run that was still training)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chestxai.cli import main
from chestxai.locks import exclusive
from chestxai.testing import write_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run, _ = write_tiny_run(tmp_path_factory.mktemp("locked"))
    return run


COMMANDS = {
    "export": lambda run, tmp: ["export", str(run), "--out", str(tmp / "m.onnx")],
    "predict": lambda run, tmp: [
        "predict",
        str(run),
        "--images",
        str(tmp / "x.png"),
        "--out",
        str(tmp / "p.csv"),
    ],
    "explain": lambda run, tmp: ["explain", str(run), "--limit", "1", "--no-progress"],
    "report": lambda run, tmp: ["report", str(run), "--out", str(tmp / "r.html")],
    "serve": lambda run, tmp: ["serve", str(run), "--port", "0"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_run_still_training_is_refused(command, run, tmp_path, capsys, monkeypatch):
    import uvicorn

    def served(*a, **k):
        raise AssertionError("served a run that is still training")

    monkeypatch.setattr(uvicorn, "run", served)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "x.png")
    before = sorted(p.name for p in run.rglob("*") if p.name != ".lock")
    with exclusive(run, "run directory"):  # what `chestxai train` holds while it writes the run
        code = main(COMMANDS[command](run, tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and "still training" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in run.rglob("*") if p.name != ".lock") == before  # nothing written
    assert not [p for p in tmp_path.iterdir() if p.name != "x.png"]

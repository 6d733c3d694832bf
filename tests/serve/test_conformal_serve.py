"""A run with a conformal calibration: ``predict`` adds its set columns and ``serve`` its
``conformal`` field, both the rule ``uncertainty.json`` stores (read back, applied to the same
probabilities); a run without one answers as before."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from serve_helpers import LABELS, LOCAL, make_run, write_png

from chestxai.cli import main
from chestxai.rundir import RunDir
from chestxai.rundir.jsonfile import write_json
from chestxai.uncertainty.conformal import calibrate_run, load_conformal


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    root = make_run(tmp_path_factory.mktemp("conformal-run"), seed=3, name="cal")
    rng = np.random.default_rng(0)
    p = rng.random((200, len(LABELS)))
    t = (rng.random((200, len(LABELS))) < p).astype(float)
    # an untrained net scores near 0.5: a threshold inside its range, so sets differ between images
    cal = calibrate_run("multilabel", LABELS, 0.4 + 0.2 * p, t, alpha=0.3)
    run = RunDir(root)
    run.conformal.root.mkdir(parents=True)
    write_json(
        {"written_by": "chestxai uncertainty --conformal", "conformal": cal.to_dict()}, run.conformal.summary
    )
    return root


def test_predict_adds_the_set_columns(calibrated_run, tmp_path):
    rng = np.random.default_rng(1)
    for i in range(4):
        write_png(tmp_path / "in" / f"img{i}.png", rng.integers(0, 255, (60, 50), dtype=np.uint8))
    out = tmp_path / "preds.csv"
    assert (
        main(
            [
                "predict",
                str(calibrated_run),
                "--folder",
                str(tmp_path / "in"),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns)[-2:] == ["conformal_set", "conformal_set_size"]
    cal = load_conformal(calibrated_run)
    expected = cal.apply(frame[[f"p_{n}" for n in LABELS]].to_numpy())
    assert frame["conformal_set"].tolist() == expected["conformal_set"]
    assert frame["conformal_set_size"].tolist() == expected["conformal_set_size"]
    threshold = cal.calibration.threshold
    for _, row in frame.iterrows():
        called = [n for n in LABELS if row[f"p_{n}"] >= threshold]
        assert row["conformal_set"] == "|".join(called)


def test_serve_answers_the_set(calibrated_run, run_dir):
    pytest.importorskip("fastapi", reason="pip install 'chestxai[serve]'")
    from fastapi.testclient import TestClient

    from chestxai.serve.app import create_app
    from chestxai.serve.models import load_all

    ok, buf = cv2.imencode(".png", np.random.default_rng(2).integers(0, 255, (80, 64), dtype=np.uint8))
    with TestClient(create_app(load_all([calibrated_run, run_dir])), base_url=LOCAL) as c:
        body = c.post("/v1/predict?model=cal", files={"file": ("x.png", buf.tobytes(), "image/png")}).json()
        plain = c.post("/v1/predict?model=run", files={"file": ("x.png", buf.tobytes(), "image/png")}).json()
    conf = body["conformal"]
    assert conf["method"] == "crc" and conf["alpha"] == 0.3 and conf["triage"] is None
    threshold = load_conformal(calibrated_run).calibration.threshold
    assert conf["set"] == [lab["name"] for lab in body["labels"] if lab["probability"] >= threshold]
    assert "alpha" in conf["guarantee"]
    assert plain["conformal"] is None  # no calibration


def test_a_stale_calibration_is_not_applied(calibrated_run, caplog):
    """Calibrated on another checkpoint epoch's probabilities: ignored, with the fix in the warning."""
    from chestxai.rundir.jsonfile import read_json
    from chestxai.serve.models import load_served

    run = RunDir(calibrated_run)
    data = read_json(run.conformal.summary)
    try:
        write_json(
            {**data, "conformal": {**data["conformal"], "checkpoint_epoch": 99}}, run.conformal.summary
        )
        assert load_served(calibrated_run).conformal is None
        assert "re-run `chestxai evaluate" in caplog.text
    finally:
        write_json(data, run.conformal.summary)

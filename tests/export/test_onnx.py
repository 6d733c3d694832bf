"""ONNX export: parity with PyTorch (<= 1e-4), metadata, `predict --onnx` without torch giving
`predict RUN`'s probabilities, and the overwrite rules."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from serve_helpers import LABELS, dicoms, nih_images, write_png

pytest.importorskip("onnxruntime", reason="pip install 'chestxai[export]'")
onnx = pytest.importorskip("onnx", reason="pip install 'chestxai[export]'")

from chestxai.cli import main  # noqa: E402
from chestxai.export.onnx import METADATA_KEY, OPSET, export_run  # noqa: E402
from chestxai.export.runtime import OnnxModel  # noqa: E402
from chestxai.rundir import RunDir, prob_column  # noqa: E402

NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "timm", "pytorch_grad_cam"):
            raise ImportError("torch is blocked in this test: " + name)
sys.meta_path.insert(0, Block())
from chestxai.cli import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.split(".")[0] == "torch"], "torch was imported"
sys.exit(code)
"""


@pytest.fixture(scope="module")
def exported(run_dir):
    return export_run(run_dir)


def test_export_writes_the_run_export_file_with_metadata_and_parity(exported, run_dir):
    assert exported.path == RunDir(run_dir).onnx and exported.ok and exported.max_abs_diff <= 1e-4
    assert exported.n_parity_images > 0 and "cache" in exported.parity_source
    model = onnx.load(str(exported.path))
    meta = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    assert meta["label_names"] == LABELS and meta["resize_to"] == 48 and meta["preprocess"]["size"] == 32
    assert meta["opset"] == OPSET and set(meta["thresholds"]) == set(LABELS)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch


def test_the_parity_figure_is_saved_beside_the_model(exported, run_dir, tmp_path, capsys):
    """Issue 20 item 10h: the README promises the parity figure with the model; it was only printed."""
    saved = RunDir(run_dir).root / "export" / "model.parity.json"
    record = json.loads(saved.read_text())
    assert record["max_abs_diff"] == exported.max_abs_diff and record["ok"] is True
    assert record["tolerance"] == 1e-4 and record["n_images"] == exported.n_parity_images
    assert record["onnx"] == "model.onnx" and record["opset"] == OPSET
    out = tmp_path / "nih.onnx"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert str(tmp_path / "nih.parity.json") in capsys.readouterr().out
    assert json.loads((tmp_path / "nih.parity.json").read_text())["onnx"] == "nih.onnx"
    foreign = tmp_path / "other.onnx"
    (tmp_path / "other.parity.json").write_text("someone's notes")
    assert main(["export", str(run_dir), "--out", str(foreign)]) == 2  # not ours: refused, kept
    assert (tmp_path / "other.parity.json").read_text() == "someone's notes" and not foreign.exists()


def test_parity_on_real_images_and_any_batch_size(exported, run_dir, shared_data, tmp_path):
    files = nih_images(shared_data, 3) + dicoms(shared_data)
    result = export_run(run_dir, tmp_path / "real.onnx", images=files)
    assert result.max_abs_diff <= 1e-4 and result.n_parity_images == len(files)
    m = OnnxModel(result.path)
    pixels = np.random.default_rng(0).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(m.forward(pixels, batch_size=1), m.forward(pixels, batch_size=5), atol=1e-6)


def test_export_command_prints_parity_and_respects_foreign_files(run_dir, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs diff" in printed and "ok" in printed
    assert main(["export", str(run_dir), "--out", str(out)]) == 0  # its own file may be replaced
    foreign = tmp_path / "other.onnx"
    foreign.write_bytes(b"someone else's model")
    assert main(["export", str(run_dir), "--out", str(foreign)]) == 2
    assert "--force" in capsys.readouterr().err and foreign.read_bytes() == b"someone else's model"


@pytest.mark.slow
def test_predict_onnx_runs_without_torch_and_matches_predict_run(exported, run_dir, tmp_path):
    rng = np.random.default_rng(3)
    for i in range(5):
        write_png(tmp_path / "in" / f"a{i}.png", rng.integers(0, 255, (70, 60 + 3 * i), dtype=np.uint8))
    (tmp_path / "in" / "bad.png").write_text("not an image")
    torch_csv, onnx_csv = tmp_path / "t.csv", tmp_path / "o.csv"
    assert (
        main(
            [
                "predict",
                str(run_dir),
                "--folder",
                str(tmp_path / "in"),
                "--out",
                str(torch_csv),
                "--no-progress",
            ]
        )
        == 0
    )
    argv = [
        "--onnx",
        str(exported.path),
        "--folder",
        str(tmp_path / "in"),
        "--out",
        str(onnx_csv),
        "--no-progress",
    ]
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "predict", *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = pd.read_csv(torch_csv), pd.read_csv(onnx_csv)
    assert list(a["path"]) == list(b["path"]) and len(a) == 5
    cols = [prob_column(n) for n in LABELS]
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), atol=1e-4)
    assert "bad.png" in pd.read_csv(tmp_path / "o.skipped.csv")["path"].iloc[0]


def test_onnx_path_refuses_heatmaps_and_mc_dropout(exported, tmp_path, capsys):
    img = write_png(tmp_path / "a.png", np.zeros((40, 40), np.uint8))
    for extra in (["--explain", "gradcam"], ["--uncertainty", "mc-dropout"]):
        argv = [
            "predict",
            "--onnx",
            str(exported.path),
            "--images",
            str(img),
            "--out",
            str(tmp_path / "o.csv"),
            *extra,
        ]
        assert main(argv) == 2
        assert "pass the run directory instead of --onnx" in capsys.readouterr().err

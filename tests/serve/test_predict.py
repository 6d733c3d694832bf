"""`chestxai predict`: bad files listed and skipped, evaluate's probabilities for the same images,
torchrun shards merged into the one-process output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from serve_helpers import LABELS, dicoms, nih_images, write_png

from chestxai.cli import main
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, save_atomic
from chestxai.rundir import RunDir, prob_column


def mixed_folder(root, good: list) -> list[str]:
    """``good`` image files plus four kinds of bad file; returns the bad names."""
    root.mkdir(parents=True, exist_ok=True)
    for p in good:
        shutil.copy(p, root / p.name)
    (root / "notes.png").write_text("a text file named .png\n")
    (root / "empty.jpg").write_bytes(b"")
    data = good[0].read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 3])
    (root / "sub").mkdir()
    (root / "sub" / "readme.txt").write_text("not an image")
    return ["cut.png", "empty.jpg", "notes.png", "readme.txt"]


def test_bad_files_are_listed_on_screen_and_in_skipped_csv(run_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = [
        write_png(tmp_path / "src" / f"img{i}.png", rng.integers(0, 255, (60, 50), dtype=np.uint8))
        for i in range(3)
    ]
    bad = mixed_folder(tmp_path / "in", good)
    out = tmp_path / "preds.csv"
    assert (
        main(["predict", str(run_dir), "--folder", str(tmp_path / "in"), "--out", str(out), "--no-progress"])
        == 0
    )
    printed = capsys.readouterr().out
    frame = pd.read_csv(out)
    assert [os.path.basename(p) for p in frame["path"]] == ["img0.png", "img1.png", "img2.png"]
    assert list(frame.columns) == ["path", *[f"p_{n}" for n in LABELS], *[f"decision_{n}" for n in LABELS]]
    assert ((frame[[f"p_{n}" for n in LABELS]] >= 0) & (frame[[f"p_{n}" for n in LABELS]] <= 1)).all().all()
    skipped = pd.read_csv(tmp_path / "preds.skipped.csv")
    assert sorted(os.path.basename(p) for p in skipped["path"]) == bad
    assert skipped["reason"].str.len().min() > 5
    for name in bad:
        assert name in printed
    # an existing output is not replaced without --force (one-line error, exit 2)
    assert main(["predict", str(run_dir), "--folder", str(tmp_path / "in"), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_flags_are_checked_before_any_work(run_dir, tmp_path, capsys):
    img = write_png(tmp_path / "a.png", np.zeros((40, 40), np.uint8))
    base = ["predict", str(run_dir), "--images", str(img)]
    cases = [
        (base + ["--out", str(tmp_path / "o.txt")], "must be a .csv"),
        (base + ["--out", str(tmp_path / "o.csv"), "--label", "Nodule"], "not one of the run's labels"),
        (base + ["--out", str(tmp_path / "o.csv"), "--explain", "magic"], "choose one of"),
        (base + ["--out", str(tmp_path / "o.csv"), "--uncertainty", "mc-dropout"], "no active dropout"),
        (["predict", "--images", str(img), "--out", str(tmp_path / "o.csv")], "either RUN"),
        (
            ["predict", str(run_dir), "--csv", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.csv")],
            "does not exist",
        ),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_csv_input_explain_and_uncertainty(dropout_run, tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        write_png(tmp_path / "imgs" / f"x{i}.png", rng.integers(0, 255, (40, 44), dtype=np.uint8))
    manifest = tmp_path / "list.csv"
    pd.DataFrame({"file": ["imgs/x0.png", "imgs/x1.png", "imgs/missing.png", "imgs/x2.png"]}).to_csv(
        manifest, index=False
    )
    out = tmp_path / "o.csv"
    argv = ["predict", str(dropout_run), "--csv", str(manifest), "--out", str(out), "--no-progress",
            "--explain", "gradcam", "--label", "Mass", "--uncertainty", "mc-dropout", "--passes", "5"]  # fmt: skip
    assert main(argv) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 3 and set(frame["explained_label"]) == {"Mass"}
    assert (frame[[f"std_{n}" for n in LABELS]] > 0).any().any()
    for png in frame["overlay"]:
        assert os.path.getsize(png) > 100
    skipped = pd.read_csv(tmp_path / "o.skipped.csv")
    assert list(skipped["reason"]) == ["file not found"]


@pytest.mark.slow
@pytest.mark.realdata
def test_predict_gives_evaluates_probabilities_for_the_same_real_images(shared_data, tmp_path):
    """Real NIH PNGs and the real DICOMs: prepared into a cache by `prepare` and scored by `evaluate`,
    and given as a folder (with bad files mixed in) to `predict`: the same probabilities."""
    from chestxai.data.prepare import prepare
    from chestxai.evaluation import evaluate_run

    good = nih_images(shared_data, 6) + dicoms(shared_data)
    images = tmp_path / "images"
    bad = mixed_folder(images, good)
    manifest = tmp_path / "manifest.csv"
    names = [p.name for p in good]
    pd.DataFrame(
        {
            "path": [f"images/{n}" for n in names],
            "A": [(i // 2) % 2 for i in range(len(names))],
            "B": [(i // 4) % 2 for i in range(len(names))],
            "split": ["val" if i % 2 else "test" for i in range(len(names))],
        }
    ).to_csv(manifest, index=False)
    cache = prepare("csv", manifest, size=64, out=tmp_path / "cache", workers=0, progress=False,
                    options={"label_cols": "A,B", "split_col": "split"})  # fmt: skip
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    torch.manual_seed(0)
    model = create_model("resnet18", num_labels=2, task="multilabel", input_size=32)
    ckpt = make_checkpoint(model, ["A", "B"], {"size": 32, "mean": 0.5, "std": 0.25},
                           config={"data": {"cache_dir": str(cache), "size": 64}}, epoch=1)  # fmt: skip
    save_atomic(ckpt, run.checkpoint)
    evaluate_run(run.root, n_boot=10, figures=False, progress=False)
    evaluate_run(run.root, split="val", n_boot=10, figures=False, progress=False)
    ev = pd.concat([pd.read_csv(run.predictions), pd.read_csv(run.predictions_for("val"))])
    ev = (
        ev.drop_duplicates("image_id")
        .assign(name=lambda f: f["image_id"].map(os.path.basename))
        .set_index("name")
    )
    out = tmp_path / "p.csv"
    assert main(["predict", str(run.root), "--folder", str(images), "--out", str(out), "--no-progress"]) == 0
    pred = pd.read_csv(out).assign(name=lambda f: f["path"].map(os.path.basename)).set_index("name")
    assert sorted(pred.index) == sorted(names)
    assert sorted(map(os.path.basename, pd.read_csv(tmp_path / "p.skipped.csv")["path"])) == bad
    for label in ("A", "B"):
        col = prob_column(label)
        np.testing.assert_allclose(pred.loc[names, col], ev.loc[names, col], atol=1e-5)


@pytest.mark.slow
def test_torchrun_shards_merge_into_the_one_process_output(run_dir, tmp_path):
    rng = np.random.default_rng(2)
    good = [
        write_png(tmp_path / "src" / f"im{i:02d}.png", rng.integers(0, 255, (50, 40 + i), dtype=np.uint8))
        for i in range(7)
    ]
    mixed_folder(tmp_path / "in", good)
    single, multi = tmp_path / "single.csv", tmp_path / "multi.csv"
    base = ["predict", str(run_dir), "--folder", str(tmp_path / "in"), "--no-progress", "--batch-size", "2"]
    assert main([*base, "--out", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "chestxai", *base, "--device", "cpu",
           "--out", str(multi)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = pd.read_csv(single), pd.read_csv(multi)
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "single.skipped.csv"), pd.read_csv(tmp_path / "multi.skipped.csv")
    )
    assert not list(tmp_path.glob(".multi.*"))  # the part files were removed

"""``chestxai ensemble`` never turns a member or a trained run into an ensemble, and takes each member
once however it is spelled (issue 20, item 22)."""

from __future__ import annotations

import os
import shutil

import pytest

from chestxai.cli import main
from chestxai.evaluation import evaluate_run
from chestxai.models.checkpoint import read_checkpoint, save_atomic
from chestxai.testing import write_tiny_run


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Three evaluated runs on one cache and split (what `chestxai ensemble` accepts)."""
    root = tmp_path_factory.mktemp("members")
    a, _ = write_tiny_run(root / "a")
    evaluate_run(a, n_boot=0, figures=False)
    for name in ("b", "c"):
        shutil.copytree(a, root / name)
        path = root / name / "checkpoint.pt"
        ckpt = read_checkpoint(path)
        ckpt["state_dict"] = {
            k: v * 0.9 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()
        }
        save_atomic(ckpt, path)
        evaluate_run(root / name, n_boot=0, figures=False)
    return {"a": a, "b": root / "b", "c": root / "c"}


@pytest.fixture
def runs(evaluated, tmp_path):
    for name, run in evaluated.items():
        shutil.copytree(run, tmp_path / name)
    return tmp_path / "a", tmp_path / "b"


@pytest.mark.parametrize("which", ["member", "other trained run"])
def test_out_holding_a_checkpoint_is_refused_even_with_force(runs, tmp_path, capsys, which):
    a, b = runs
    other = tmp_path / "c"
    out = b if which == "member" else other
    before = (out / "checkpoint.pt").read_bytes()
    code = main(["ensemble", str(a), str(b), "--out", str(out), "--force", "--n-boot", "0", "--no-figures"])
    err = capsys.readouterr().err
    assert code != 0 and "give a new folder" in err and len(err.strip().splitlines()) == 1
    assert (out / "checkpoint.pt").read_bytes() == before and not (out / "ensemble.json").exists()


@pytest.mark.parametrize("spelling", ["same", "trailing slash", "symlink"])
def test_a_member_given_twice_is_refused(runs, tmp_path, capsys, spelling):
    a, _ = runs
    again = {"same": str(a), "trailing slash": str(a) + os.sep, "symlink": str(tmp_path / "link")}[spelling]
    if spelling == "symlink":
        os.symlink(a, tmp_path / "link")
    code = main(["ensemble", str(a), again, "--out", str(tmp_path / "ens"), "--n-boot", "0", "--no-figures"])
    err = capsys.readouterr().err
    assert code != 0 and "given twice" in err
    assert not (tmp_path / "ens").exists()

"""``chestxai experiment``: a list of runs trained, evaluated, ensembled and compared; resumable;
a broken run is listed and the rest still compares; a bad file fails before any run starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from chestxai.cli import main
from chestxai.experiment.runner import experiment_path
from chestxai.experiment.spec import load_experiment
from chestxai.testing import blob_cache

FAST = {"train.epochs": 1, "train.max_steps_per_epoch": 1, "train.threads": 1, "train.batch_size": 16}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return blob_cache(tmp_path_factory.mktemp("cache") / "c", (48, 24, 24), size=32, seed=1)


def write_experiment(path: Path, cache: Path, dropout_b: float = 0.2, broken: bool = True) -> Path:
    runs = [
        {"name": "a", "recipe": "pneumoniamnist_resnet18"},
        {"name": "b", "recipe": "pneumoniamnist_resnet18", "set": {"model.dropout": dropout_b}},
    ]
    if broken:  # valid config, fails at run time: the cache holds a binary task
        runs.append({"name": "broken", "recipe": "pneumoniamnist_resnet18", "set": ["data.task=multiclass"]})
    runs.append({"name": "ens", "ensemble": ["a", "b"]})
    doc = {
        "name": "tiny",
        "description": "two tiny runs and their ensemble",
        "set": {**FAST, "data.cache_dir": str(cache)},
        "evaluate": {"n_boot": 20},
        "compare": {"n_boot": 20, "speed": False},
        "runs": runs,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def state(out: Path) -> dict:
    return json.loads((out / "experiment.json").read_text())


@pytest.fixture(scope="module")
def finished(cache, tmp_path_factory) -> tuple[Path, Path, str, int]:
    """The experiment run once: (experiment file, output folder, stdout, exit code)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("exp")
    exp = write_experiment(root / "tiny.yaml", cache)
    out = root / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(["experiment", str(exp), "--out", str(out), "--no-progress"])
    return exp, out, buffer.getvalue(), rc


def test_runs_train_evaluate_ensemble_and_compare_while_a_broken_run_is_listed(finished) -> None:
    _, out, printed, rc = finished
    assert rc == 1  # one run failed: said in the exit code, after everything else ran
    runs = state(out)["runs"]
    assert {k: v["status"] for k, v in runs.items()} == {
        "a": "done",
        "b": "done",
        "broken": "failed",
        "ens": "done",
    }
    assert "multiclass task" in runs["broken"]["error"] and "broken" in printed and "FAILED" in printed
    for name in ("a", "b", "ens"):
        assert (out / name / "metrics.json").is_file()
    assert (out / "ens" / "ensemble.json").is_file()
    table = (out / "comparison.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in table[1:]] == ["a", "b", "ens"]  # file order, broken left out
    assert state(out)["comparison"]["runs"] == ["a", "b", "ens"]


def test_a_resumed_experiment_skips_finished_runs(finished, tmp_path, capsys) -> None:
    exp, first, _, _ = finished
    out = tmp_path / "out"
    shutil.copytree(first, out)
    stamp = (out / "a" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["experiment", str(exp), "--out", str(out), "--no-progress", "--resume"]) == 1
    printed = capsys.readouterr().out
    statuses = {k: v["status"] for k, v in state(out)["runs"].items()}
    assert statuses == {
        "a": "finished earlier",
        "b": "finished earlier",
        "broken": "failed",
        "ens": "finished earlier",
    }
    assert (out / "a" / "checkpoint.pt").stat().st_mtime_ns == stamp  # not trained again
    assert "== a:" not in printed and "== broken:" in printed  # only the unfinished run was tried
    assert (out / "comparison.md").is_file()


def test_without_resume_a_used_folder_is_refused_and_changed_settings_always(
    finished, cache, tmp_path, capsys
) -> None:
    exp, first, _, _ = finished
    assert main(["experiment", str(exp), "--out", str(first)]) == 2
    assert "--resume" in capsys.readouterr().err
    changed = write_experiment(tmp_path / "tiny.yaml", cache, dropout_b=0.4)
    assert main(["experiment", str(changed), "--out", str(first), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "['b']" in err and "other settings" in err  # a finished run is never silently stale


def test_without_a_recorded_state_the_saved_configs_decide(finished, cache, tmp_path, capsys) -> None:
    """Killed before experiment.json recorded a run (or a folder not ours): config.yaml is checked."""
    exp, first, _, _ = finished
    out = tmp_path / "out"
    shutil.copytree(first, out)
    (out / "experiment.json").unlink()
    changed = write_experiment(tmp_path / "tiny.yaml", cache, dropout_b=0.4, broken=False)
    assert main(["experiment", str(changed), "--out", str(out), "--resume", "--dry-run"]) == 0
    assert "b: pneumoniamnist_resnet18 [changed" in capsys.readouterr().out
    same = write_experiment(tmp_path / "same.yaml", cache, broken=False)
    assert main(["experiment", str(same), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert {v["status"] for v in state(out)["runs"].values()} == {"finished earlier"}


def test_dry_run_prints_the_plan_and_writes_nothing(finished, tmp_path, capsys) -> None:
    exp, first, _, _ = finished
    assert main(["experiment", str(exp), "--out", str(first), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "a: pneumoniamnist_resnet18 [finished" in plan and "broken: pneumoniamnist_resnet18 [new" in plan
    assert "ens: ensemble of a, b" in plan and "set model.dropout=0.2" in plan
    new = tmp_path / "new"
    assert main(["experiment", str(exp), "--out", str(new), "--dry-run"]) == 0
    assert "[new: train + evaluate]" in capsys.readouterr().out and not new.exists()


# ---- the file is checked before anything runs -----------------------------------------------------
def bad(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))  # copies: no YAML aliases
    return path


RUN = {"name": "a", "recipe": "pneumoniamnist_resnet18"}


@pytest.mark.parametrize(
    "doc,error,match",
    [
        ({"rnus": [RUN]}, ValueError, r"unknown key 'rnus' \(did you mean 'runs'\?\)"),
        ({"runs": []}, ValueError, "non-empty list"),
        ({"runs": [{"name": "a", "recipie": "x"}]}, ValueError, r"did you mean 'recipe'\?"),
        (
            {"runs": [{"name": "a", "recipe": "no_such_recipe"}]},
            FileNotFoundError,
            "run 'a'.*shipped recipes",
        ),
        ({"runs": [RUN, RUN]}, ValueError, "run 'a': the name is used twice"),
        # issue 20, item 22: `name: null` became a run named "None"
        (
            {"runs": [RUN, {"name": None, "recipe": "x"}]},
            ValueError,
            r"runs\[1\]: 'name' must be a text name",
        ),
        ({"runs": [{"name": 7, "recipe": "x"}]}, ValueError, r"runs\[0\]: 'name' must be a text name.*got 7"),
        ({"runs": [{"name": "a/b", "recipe": "x"}]}, ValueError, "path separator"),
        ({"runs": [{"name": "e", "ensemble": ["a", "b"]}, RUN]}, ValueError, "'a' is not an earlier run"),
        ({"runs": [RUN, {"name": "e", "ensemble": ["a"]}]}, ValueError, "two or more"),
        (
            {"runs": [{**RUN, "set": {"model.nmae": "x"}}]},
            ValueError,
            r"run 'a'.*unknown key 'nmae' \(did you mean 'name'",
        ),
        ({"runs": [{**RUN, "set": ["train.lr=fast"]}]}, ValueError, "run 'a'.*not a valid float"),
        ({"runs": [{**RUN, "ensemble": ["a", "b"]}]}, ValueError, "either 'recipe'.*or 'ensemble'"),
        ({"evaluate": {"n_boot": "many"}, "runs": [RUN]}, ValueError, "evaluate.n_boot must be a int"),
        ({"compare": {"speeed": True}, "runs": [RUN]}, ValueError, r"did you mean 'speed'\?"),
    ],
)
def test_a_bad_experiment_file_is_a_clear_error(tmp_path, doc, error, match) -> None:
    with pytest.raises(error, match=match):
        load_experiment(bad(tmp_path, doc), tmp_path / "out")


def test_nested_ensembles_and_cli_errors_are_one_line_before_any_run(tmp_path, capsys) -> None:
    runs = [
        RUN,
        {**RUN, "name": "b"},
        {"name": "e", "ensemble": ["a", "b"]},
        {"name": "f", "ensemble": ["a", "e"]},
    ]
    with pytest.raises(ValueError, match="'e' is itself an ensemble"):
        load_experiment(bad(tmp_path, {"runs": runs}), tmp_path / "out")
    out = tmp_path / "out"
    assert main(["experiment", str(bad(tmp_path, {"runs": [RUN, RUN]})), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "used twice" in err[0] and not out.exists()


def test_overrides_apply_in_order_and_every_run_gets_its_folder(tmp_path) -> None:
    doc = {
        "set": ["train.lr=0.01", "train.epochs=3"],
        "runs": [RUN, {"name": "b", "recipe": "pneumoniamnist_resnet18", "set": {"train.lr": 0.02}}],
    }
    exp = load_experiment(bad(tmp_path, doc), tmp_path / "out", cli_set=["train.epochs=2"], device="cpu")
    a, b = (exp.run(n).config for n in ("a", "b"))
    assert (a.train.lr, b.train.lr) == (0.01, 0.02) and a.train.epochs == b.train.epochs == 2
    assert a.run_path == tmp_path / "out" / "a" and b.name == "b" and a.train.device == "cpu"
    assert exp.run("a").fingerprint() == exp.run("a").fingerprint() != exp.run("b").fingerprint()
    assert load_experiment(bad(tmp_path, doc)).run("a").config.run_path == Path("runs") / "bad" / "a"


def test_shipped_experiments_are_found_by_name() -> None:
    assert experiment_path("siim_architectures").name == "siim_architectures.yaml"
    with pytest.raises(FileNotFoundError, match="pneumoniamnist_architectures"):
        experiment_path("no_such_experiment")

"""``chestxai tune`` end to end on a tiny blob cache: pruning (forced), best recipe, resume after a
kill, two processes on one journal, errors before any trial, the report (issue 14 acceptance)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from chestxai.config import load_config
from chestxai.crashpoints import ENV as CRASH_ENV
from chestxai.report.tune import build_tune_report
from chestxai.rundir import StudyDir
from chestxai.train.loop import train
from chestxai.tune import objective

from .conftest import run_here, start, tune_args


@pytest.fixture(scope="module")
def study(tiny, tmp_path_factory):
    """A finished 3-trial study whose trial 1 reports val AUC 0.0 at epoch 1 (forced through the
    objective's one value function, so the median rule must prune it there)."""
    real = objective.epoch_value

    def forced(number: int, row: dict) -> float:
        return 0.0 if (number, int(row["epoch"])) == (1, 1) else real(number, row)

    folder = tmp_path_factory.mktemp("s") / "st"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(objective, "epoch_value", forced)
        assert run_here(tune_args(tiny, folder)) == 0
    return StudyDir(folder)


def summary(folder: StudyDir) -> dict:
    return json.loads(folder.summary.read_text())


def test_three_trials_run_and_the_forced_bad_trial_is_pruned(study):
    s = summary(study)
    states = [t["state"] for t in s["trials"]]
    assert len(states) == 3 and states[0] == "COMPLETE"
    pruned = s["trials"][1]
    assert pruned["state"] == "PRUNED" and pruned["intermediate"] == {"1": 0.0} and pruned["epochs_run"] == 1
    assert pruned["epochs_planned"] == 2 and s["pruning"]["pruned_trials"] >= 1
    for t in s["trials"]:  # every trial is an ordinary run directory named by its Optuna number
        run = study.trial(t["number"])
        assert t["run_dir"] == run.root.name and run.checkpoint.is_file() and run.history.is_file()
        assert set(t["params"]) == {"train.lr", "train.batch_size", "model.dropout"}


def test_test_is_evaluated_once_for_the_best_trial_only(study):
    s = summary(study)
    best = s["best"]
    assert best["value"] == max(t["value"] for t in s["trials"] if t["state"] == "COMPLETE")
    assert s["test_evaluated"] == [best["number"]]
    assert best["test"]["roc_auc"]["value"] is not None and len(best["test"]["roc_auc"]["ci"]) == 2
    evaluated = [t["number"] for t in s["trials"] if study.trial(t["number"]).metrics.exists()]
    assert evaluated == [best["number"]]  # selection used val only; no other trial saw test


def test_best_yaml_is_a_recipe_that_trains_as_it_is(study, tmp_path):
    s = summary(study)
    raw = yaml.safe_load(study.best_config.read_text())
    assert "run_dir" not in raw and "environment" not in raw and raw["name"] == f"{study.root.name}-best"
    config = load_config(study.best_config, [f"run_dir={tmp_path / 'again'}"])
    for key, value in s["best"]["params"].items():
        section, name = key.split(".")
        assert getattr(getattr(config, section), name) == value
    run = train(config, progress=False)
    assert (run / "checkpoint.pt").is_file()


def test_report_has_the_trials_table_and_figures(study):
    html = study.report.read_text()
    assert "<table>" in html and "Optimisation history" in html and "PRUNED" in html
    assert "needs at least 2 complete trials" in html or "importance" in html.lower()
    assert study.history_figure.is_file() and study.intermediate_figure.is_file()
    assert build_tune_report(study.root) == study.report  # a re-build replaces its own report


@pytest.mark.slow
def test_report_renders_in_chromium(study, browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(study.report.resolve().as_uri(), wait_until="load")
    widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert len(widths) >= 2 and all(w > 0 for w in widths) and errors == []
    assert page.locator("#trials table:first-of-type tbody tr").count() == 3  # wide tables come in parts
    page.close()


def test_rerun_continues_to_the_new_total_and_refuses_another_space(study, tiny, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text("train.lr: {log_uniform: [1e-4, 1e-1]}\n")
    args = tune_args(tiny, study.root)
    args[args.index("--space") + 1] = str(other)
    assert run_here(args) == 2
    assert "was started with another search space" in capsys.readouterr().err
    assert run_here(tune_args(tiny, study.root, 3)) == 0  # complete: nothing to run
    assert "3 of 3 trials done" in capsys.readouterr().out and len(summary(study)["trials"]) == 3


def test_space_errors_come_before_any_trial(tiny, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    for text, message in [
        ("train.lrr: {log_uniform: [1e-4, 1e-1]}\n", "unknown key 'lrr' (did you mean 'lr'?)"),
        ("model.dropout: {uniform: [0.5, 0.5]}\n", "is empty"),
        ("train.lr: {gauss: [0.1, 0.2]}\n", "unknown kind 'gauss'"),
    ]:
        bad.write_text(text)
        args = tune_args(tiny, tmp_path / "never")
        args[args.index("--space") + 1] = str(bad)
        assert run_here(args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_unforced_trials_report_each_epochs_val_auc_from_their_history(study):
    """The value function's default: what a trial reports at an epoch is its history row's val AUC."""
    checked = 0
    for t in summary(study)["trials"]:
        if t["number"] == 1:  # the forced trial
            continue
        history = pd.read_csv(study.trial(t["number"]).history).set_index("epoch")["val_auc"]
        for epoch, value in t["intermediate"].items():
            assert value == pytest.approx(history[int(epoch)], abs=1e-12), (t["number"], epoch)
            checked += 1
    assert checked >= 2


def test_a_killed_study_resumes_and_re_runs_the_dead_trial(tiny, tmp_path, capsys):
    folder = StudyDir(tmp_path / "killed")
    # 2 epochs per trial: the third last.pt is trial 1's first epoch
    proc = start(tune_args(tiny, folder.root), **{CRASH_ENV: "train:after-last@3"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 137, err[-2000:]
    assert folder.trial(1).last.is_file() and not folder.trial(2).root.exists()
    assert run_here(tune_args(tiny, folder.root)) == 0
    out = capsys.readouterr().out
    assert "trial 1 was running when its process died" in out
    s = summary(folder)
    by = {t["number"]: t for t in s["trials"]}
    assert by[1]["state"] == "FAIL" and "re-run as trial 2" in by[1]["error"]
    assert by[2]["retry_of"] == 1 and by[2]["params"] == by[1]["params"] and by[2]["state"] != "FAIL"
    assert len(by) == 4 and s["retried"] == [1]  # 3 trials count: the retry replaces the dead one
    assert s["best"]["test"] is not None and folder.best_config.is_file()


def test_two_processes_sharing_a_journal_never_run_the_same_trial(tiny, tmp_path):
    folder = StudyDir(tmp_path / "shared")
    procs = [start(tune_args(tiny, folder.root, 4)) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    s = summary(folder)
    numbers = [t["number"] for t in s["trials"]]
    assert sorted(numbers) == [0, 1, 2, 3] and all(t["state"] in ("COMPLETE", "PRUNED") for t in s["trials"])
    for n in numbers:  # each trial trained into its own folder, by one process
        config = yaml.safe_load(folder.trial(n).config.read_text())
        assert config["run_dir"] == str(folder.trial(n).root)
    assert s["test_evaluated"] == [s["best"]["number"]]  # once, by whichever process finished last
    print("workers:", {t["number"]: t["worker"] for t in s["trials"]})


def test_a_database_url_holds_the_study_instead_of_the_journal(tiny, tmp_path):
    folder = StudyDir(tmp_path / "rdb")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert run_here(tune_args(tiny, folder.root, 2, "--storage", url)) == 0
    s = summary(folder)
    assert s["storage"] == url and len(s["trials"]) == 2 and not folder.journal.exists()


def test_a_device_choice_this_machine_lacks_fails_before_any_trial(tiny, tmp_path, capsys):
    """Issue 20 item 22: `train.device: {choice: [cpu, cuda:99]}` passed the space check and failed
    only inside the first trial that drew cuda:99 (after the study and its folder existed)."""
    bad = tmp_path / "devices.yaml"
    bad.write_text("train.device: {choice: ['cuda:99', cpu]}\ntrain.lr: {log_uniform: [1e-4, 1e-1]}\n")
    args = tune_args(tiny, tmp_path / "never", 2)
    args[args.index("--space") + 1] = str(bad)
    assert run_here(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(bad) in err and "train.device" in err and "'cuda:99'" in err
    assert not (tmp_path / "never").exists()


def test_a_study_whose_every_trial_failed_exits_non_zero_with_the_first_error(tiny, tmp_path, capsys):
    """Issue 20 item 22: every trial failed (here: val AUC undefined at every epoch, as with a val
    split of one class) and tune still exited 0, with no best trial."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(objective, "epoch_value", lambda number, row: float("nan"))
        code = run_here(tune_args(tiny, tmp_path / "failing", 2))
    err = capsys.readouterr().err
    assert code == 1
    assert "no trial completed: 2 of 2 trial(s) failed" in err
    assert "first error (trial 0): validation AUC undefined at every epoch" in err
    assert summary(StudyDir(tmp_path / "failing"))["best"] is None

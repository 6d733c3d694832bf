"""A ``--storage`` file that is not an Optuna journal is named, with what is accepted (issue 20, item 22)."""

from __future__ import annotations

import sqlite3

import pytest

from chestxai.rundir import StudyDir
from chestxai.tune.storage import open_storage


def test_a_text_file_as_storage_is_named(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("trial,value\n0,0.5\n")
    with pytest.raises(ValueError, match=r"--storage .*results\.csv is not an Optuna journal.*sqlite:///"):
        open_storage(str(path), StudyDir(tmp_path / "study"))


def test_an_sqlite_file_as_storage_says_how_to_pass_it(tmp_path):
    path = tmp_path / "study.db"
    sqlite3.connect(path).execute("create table t (x)").connection.commit()
    with pytest.raises(ValueError, match=r"study\.db is an SQLite database.*sqlite:///"):
        open_storage(str(path), StudyDir(tmp_path / "study"))


def test_a_new_or_existing_journal_is_accepted(tmp_path):
    study = StudyDir(tmp_path / "study")
    storage = open_storage(None, study)
    import optuna

    optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), 1)
    open_storage(str(study.journal), study)  # its own journal reads back

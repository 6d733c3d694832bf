"""Where a study lives: Optuna's journal file (the default) or a database URL (``--storage``).

The journal (``runs/<name>/study.journal``) needs no server: several processes, on one machine
or on machines sharing the folder, append to it under Optuna's file lock. A URL
(``sqlite:///study.db``, ``postgresql://user@host/db``, ``mysql://...``) uses Optuna's RDB
storage instead, for machines that share a database rather than a folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chestxai.rundir import StudyDir

RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


def is_url(storage: str | None) -> bool:
    return bool(storage) and "://" in str(storage)


def journal_path(storage: str | None, study: StudyDir) -> Path | None:
    """The journal file of this study, or None for a database URL."""
    if is_url(storage):
        return None
    return Path(storage) if storage else study.journal


def open_storage(storage: str | None, study: StudyDir) -> Any:
    """An Optuna storage object for ``--storage`` (empty: the study folder's journal file)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if is_url(storage):
        scheme = str(storage).split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in RDB_SCHEMES:
            raise ValueError(
                f"--storage {describe(storage, study)}: unknown scheme {scheme!r}; give a journal file path, "
                f"or a database URL ({', '.join(RDB_SCHEMES[:3])}, ...), e.g. sqlite:///study.db"
            )
        return optuna.storages.RDBStorage(str(storage))
    path = journal_path(storage, study)
    if path.is_dir():
        raise ValueError(f"--storage {path} is a folder; give a journal file, e.g. {StudyDir(path).journal}")
    check_journal(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def check_journal(path: Path) -> None:
    """A ``--storage`` file that exists must be an Optuna journal (JSON lines with an ``op_code``):
    anything else (an SQLite database, a results table) is named, with what is accepted, before
    Optuna fails on it without the file's name."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        head = f.readline(65536)
    accepted = "give an Optuna journal file (chestxai tune writes STUDY/study.journal) or a database URL such as sqlite:///study.db"
    if head.startswith(b"SQLite format 3"):
        raise ValueError(
            f"--storage {path} is an SQLite database, not a journal file; pass it as sqlite:///{path}"
        )
    try:
        record = json.loads(head)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise ValueError(
            f"--storage {path} is not an Optuna journal file (its first line is no journal record); {accepted}"
        )


def describe(storage: str | None, study: StudyDir) -> str:
    """The storage for messages and study.json, with any password in a URL hidden."""
    if is_url(storage):
        return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(storage))
    return str(journal_path(storage, study))

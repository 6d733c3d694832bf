"""``summarize`` / ``format_summary`` and the ``chestxai data summary`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chestxai.cli import main
from chestxai.commands._options import split_pairs
from chestxai.data.reader_options import parse_scalar
from chestxai.data.readers import list_readers, read_table
from chestxai.data.summary import count_existing, format_summary, summarize
from chestxai.data.table import ImageTable

MANIFEST = "path,findings,pid,split\nimg/a.png,Mass|Effusion,p1,train\nimg/b.png,,p1,train\nimg/c.png,Effusion,p2,test\n"


def test_every_source_is_registered():
    expected = {"folder", "csv", "nih", "chexpert", "siim", "rsna", "covid-collection", "medmnist"}
    assert expected <= set(list_readers())


def test_summary_counts(tmp_path):
    (tmp_path / "m.csv").write_text(MANIFEST)
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    t = read_table(
        "csv", tmp_path / "m.csv", label_col="findings", sep="|", patient_col="pid", split_col="split"
    )
    t.boxes = pd.DataFrame(
        {
            "image_id": ["img/a.png"] * 2,
            "label": ["Mass", "Effusion"],
            "x": [0.1, 0.2],
            "y": [0.1, 0.2],
            "w": [0.1, 0.1],
            "h": [0.1, 0.1],
        }
    )
    s = summarize(t)
    assert s["images"] == 3 and s["patients"] == 2
    assert s["labels"]["Effusion"] == {"positive": 2, "negative": 0, "unknown": 1}
    assert s["labels"]["Mass"] == {"positive": 1, "negative": 1, "unknown": 1}
    assert s["rows_unknown"] == 1 and s["rows_all_negative"] == 0
    assert s["files"] == {"listed": 3, "exist": 1, "missing": 2, "in_memory": False}
    assert s["splits"] == {"test": 1, "train": 2}
    assert s["boxes"] == {"total": 2, "images": 1, "per_label": {"Effusion": 1, "Mass": 1}}
    assert s["masks"]["total"] == 0
    json.dumps(s)  # JSON-ready
    text = format_summary(s)
    assert "1 of 3 on disk" in text and "Effusion" in text and "notes" in text
    assert summarize(t, check_files=False)["files"]["exist"] is None


def test_in_memory_tables_count_as_present():
    n = 4
    frame = pd.DataFrame(
        {
            "image_id": list("abcd"),
            "path": [""] * n,
            "patient_id": list("abcd"),
            "view": [""] * n,
            "split": ["train"] * n,
        }
    )
    t = ImageTable(
        "mem",
        frame,
        ["P"],
        np.array([[1], [0], [np.nan], [1]]),
        "binary",
        arrays=np.zeros((n, 2, 2), np.uint8),
    )
    s = summarize(t)
    assert s["files"] == {"listed": 4, "exist": 4, "missing": 0, "in_memory": True}
    assert s["labels"]["P"] == {"positive": 2, "negative": 1, "unknown": 1}
    assert "in memory" in format_summary(s)


def test_count_existing_lists_each_folder_once(tmp_path):
    (tmp_path / "a").write_text("")
    assert count_existing([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "no" / "c"), ""]) == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("No", False),
        ("12", 12),
        ("0.5", 0.5),
        ("ones", "ones"),
        ("none", None),
        ("A,B", "A,B"),
    ],
)
def test_parse_scalar(text, value):
    """Options a reader does not annotate are read by the look of their text."""
    assert parse_scalar(text) == value


def test_split_pairs_errors():
    assert split_pairs(["a=1", "b =x", "sep=|"]) == {"a": "1", "b": "x", "sep": "|"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        split_pairs(["oops"])


def test_cli_summary_json_and_text(tmp_path, capsys):
    (tmp_path / "m.csv").write_text(MANIFEST)
    argv = [
        "data",
        "summary",
        "--source",
        "csv",
        "--root",
        str(tmp_path / "m.csv"),
        "-o",
        "label_col=findings",
        "-o",
        "sep=|",
        "--option",
        "split_col=split",
    ]
    assert main([*argv, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["images"] == 3 and s["label_names"] == ["Effusion", "Mass"]
    assert main(argv) == 0
    assert "source   csv" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "summary", "--source", "chexpert", "--root", str(tmp_path), "-o", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "has no option bogus" in err and "uncertainty" in err
    assert main(["data", "summary", "--source", "rsna", "--root", str(tmp_path)]) == 2
    assert "stage_2_train_labels.csv" in capsys.readouterr().err


def test_cli_help_explains(capsys):
    with pytest.raises(SystemExit):
        main(["data", "summary", "--help"])
    out = capsys.readouterr().out
    assert "--option" in out and "uncertainty=ones|zeros|ignore" in out and "--json" in out

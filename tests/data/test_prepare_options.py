"""``--option KEY=VALUE``: one parser for ``prepare`` and ``data summary``, checked against the reader.

Issue 8: ``prepare --option bogus=1`` ended in a raw TypeError; the two commands parsed values
differently (YAML in one, keywords in the other). Issue 9: a list where a reader expects text
(``path_col=[path]``) died inside pandas with a traceback.
"""

from __future__ import annotations

import pytest
from synth_images import gradient, write_png

from chestxai.cli import main
from chestxai.commands import _options
from chestxai.commands import data as data_cmd
from chestxai.commands import prepare as prepare_cmd
from chestxai.data.prepare import prepare
from chestxai.data.reader_options import check_reader_options, parse_reader_options, reader_parameters


@pytest.fixture
def manifest(tmp_path):
    (tmp_path / "img").mkdir()
    for name in ("a", "b"):
        write_png(tmp_path / "img" / f"{name}.png", gradient())
    path = tmp_path / "m.csv"
    path.write_text("path,A,B,pid\nimg/a.png,1,0,007\nimg/b.png,0,1,008\n")
    return path


def run_both(capsys, root, *options) -> list[tuple[int, str]]:
    """(exit code, stderr) of ``prepare`` and of ``data summary`` with the same reader options."""
    opts = [x for o in options for x in ("--option", o)]
    out = []
    for argv in (
        ["prepare", "--source", "csv", "--root", str(root), "--out", str(root.parent / "c"), "--quiet"],
        ["data", "summary", "--source", "csv", "--root", str(root)],
    ):
        rc = main([*argv, *opts])
        out.append((rc, capsys.readouterr().err.strip()))
    return out


def test_both_commands_use_the_one_parser():
    assert prepare_cmd.reader_options is _options.reader_options is data_cmd.reader_options
    assert not hasattr(prepare_cmd, "parse_options") and not hasattr(data_cmd, "parse_options")


def test_unknown_option_is_one_line_listing_the_valid_ones(manifest, capsys):
    for rc, err in run_both(capsys, manifest, "label_cols=A,B", "bogus=1"):
        assert rc == 2 and "\n" not in err and "Traceback" not in err
        assert "has no option bogus" in err and "path_col" in err and "label_cols" in err


def test_list_where_text_is_expected_is_one_line(manifest, capsys):
    for rc, err in run_both(capsys, manifest, "label_cols=A,B", "path_col=[path]"):
        # text where text is declared: "[path]" is a (missing) column name, said in one line
        assert rc == 2 and "\n" not in err and "Traceback" not in err and "[path]" in err


def test_library_prepare_checks_reader_options_too(manifest, tmp_path):
    """A recipe's data.options reach prepare() without the CLI: same checks, no TypeError."""
    with pytest.raises(ValueError, match="has no option bogus"):
        prepare(
            "csv", manifest, options={"label_cols": "A,B", "bogus": 1}, out=tmp_path / "c", progress=False
        )
    with pytest.raises(ValueError, match="path_col=\\['path'\\].*expected text"):
        prepare("csv", manifest, options={"label_cols": "A,B", "path_col": ["path"]}, out=tmp_path / "c")


def test_values_follow_the_declared_type(manifest, capsys):
    # text stays text (YAML made 007 the number 7), lists in either spelling, switches as words
    assert parse_reader_options("csv", {"patient_col": "pid", "id_col": "007"}) == {
        "patient_col": "pid",
        "id_col": "007",
    }
    assert parse_reader_options("folder", {"classes": "[A, B]", "masks": "no", "positive": "none"}) == {
        "classes": ["A", "B"],
        "masks": False,
        "positive": None,
    }
    assert parse_reader_options("folder", {"classes": "A,B"}) == {"classes": "A,B"}  # the reader splits it
    assert parse_reader_options("nih", {"bbox_size": "1024"}) == {"bbox_size": 1024}
    assert parse_reader_options("nih", {"bbox_size": "512.5"}) == {"bbox_size": 512.5}
    assert parse_reader_options("medmnist", {"size": "64"}) == {"size": 64}
    for source, texts, expected in [
        ("folder", {"masks": "maybe"}, "true/false"),
        ("medmnist", {"size": "2.5"}, "whole number"),
        ("nih", {"bbox_size": "big"}, "a number"),
    ]:
        with pytest.raises(ValueError, match=expected):
            parse_reader_options(source, texts)


def test_the_same_options_give_the_same_cache(manifest, tmp_path, capsys):
    """CLI text and a recipe's typed values are one input: the cache is shared, not rebuilt."""
    assert (
        main(
            ["prepare", "--source", "csv", "--root", str(manifest), "--out", str(tmp_path / "c")]
            + ["--option", "label_cols=[A, B]", "--quiet"]
        )
        == 0
    )
    cli_path = capsys.readouterr().out.splitlines()[0]
    lib_path = prepare(
        "csv", manifest, options={"label_cols": ["A", "B"]}, out=tmp_path / "c", progress=False
    )
    assert str(lib_path) == cli_path


def test_every_reader_option_is_typed():
    """Each reader's options are annotated, so values are read by type, never guessed."""
    from chestxai.data.readers import list_readers

    for source in list_readers():
        params = reader_parameters(source)
        untyped = [name for name, allowed in params.items() if name != "**" and not allowed]
        assert not untyped, f"reader {source!r}: annotate options {untyped}"


def test_check_accepts_what_readers_declare():
    assert check_reader_options("folder", {"classes": ["A", "B"], "masks": True}) == {
        "classes": ["A", "B"],
        "masks": True,
    }
    assert check_reader_options("nih", {"bbox_size": 1024, "include_no_finding": False})
    with pytest.raises(ValueError, match="expected true/false"):
        check_reader_options("folder", {"masks": "no"})  # a recipe's "no" in quotes is text, not false
    with pytest.raises(ValueError, match="expected a whole number"):
        check_reader_options("medmnist", {"size": 2.5})
    # a recipe's ``positive: 1`` for a 0/1 column worked before and still does (compared as text)
    assert check_reader_options("csv", {"label_col": "y", "positive": 1}) == {"label_col": "y", "positive": 1}
    with pytest.raises(ValueError, match="expected text or none, got bool"):
        check_reader_options("csv", {"positive": True})  # YAML's reading of `positive: yes`

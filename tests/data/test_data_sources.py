"""``chestxai data sources``: every reader's layout and options, from the reader itself (issue 20 item 10a).

It used to print each reader's first docstring line, which for three readers was "see the module
docstring": a file a CLI user never opens.
"""

from __future__ import annotations

import inspect

from chestxai import cli
from chestxai.data.readers import READERS, list_readers


def test_sources_prints_every_readers_layout_and_options(capsys):
    assert cli.main(["data", "sources"]) == 0
    out = capsys.readouterr().out
    assert "docstring" not in out
    from chestxai.data.reader_help import reader_help

    for name in list_readers():
        h = reader_help(name)
        assert f"{name}: {h.title}" in out
        assert h.layout, f"reader {name!r}: its module docstring has no 'Layout ...::' block"
        for line in h.layout:
            assert line in out
        params = list(inspect.signature(READERS.get(name)).parameters)[1:]  # after root
        assert [o[0] for o in h.options] == params
        for option in params:
            assert f"{option}=" in out, (name, option)
    assert "Data_Entry_2017.csv" in out and "include_no_finding=false (bool)" in out


def test_sources_name_prints_the_whole_description(capsys):
    assert cli.main(["data", "sources", "chexpert"]) == 0
    out = capsys.readouterr().out
    assert "U-Ones" in out and "uncertainty=ignore (str)" in out  # the policies, not only the layout
    assert "nih:" not in out


def test_sources_unknown_name_is_one_line(capsys):
    assert cli.main(["data", "sources", "nihh"]) == 2
    assert "did you mean 'nih'" in capsys.readouterr().err

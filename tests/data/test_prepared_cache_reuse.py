"""A cache made by ``prepare --out DIR`` is the one ``train`` uses (issue 20 item 2).

The README's ``prepare --out cache/`` was wasted: the ``train`` after it decoded everything again
into ``~/.cache/chestxai`` unless given ``--cache cache``, which nothing said. ``prepare`` now
prints the train command that uses its cache, and ``train`` says which cache it uses, or where it
looks for one, before it reads anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chestxai.cli import main
from chestxai.config import DataConfig


@pytest.fixture
def folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for label in ("normal", "pneumonia"):
        (tmp_path / "xrays" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(
                tmp_path / "xrays" / label / f"{label}-{i}.png"
            )
    return tmp_path / "xrays"


def _prepare(folder: Path, out: Path, capsys) -> tuple[Path, str]:
    argv = ["prepare", "--source", "folder", "--root", str(folder), "--size", "16", "--out", str(out)]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    return Path(text.splitlines()[0]), text


def test_prepare_prints_the_train_command_that_uses_its_cache(folder, tmp_path, capsys) -> None:
    cache, text = _prepare(folder, tmp_path / "cache", capsys)
    assert f"chestxai train --config RECIPE --set data.cache_dir={cache}" in text
    assert f"--cache {tmp_path / 'cache'}" in text


def test_train_pointed_at_the_prepare_out_folder_reuses_that_cache(folder, tmp_path, capsys, monkeypatch):
    from chestxai.data import prepare as prepare_module
    from chestxai.train.data_setup import ensure_cache

    cache, _ = _prepare(folder, tmp_path / "cache", capsys)

    def no_decoding(*a, **k):
        raise AssertionError("the prepared cache was decoded again")

    monkeypatch.setattr(prepare_module, "decode_all", no_decoding)
    data = DataConfig(source="folder", root=str(folder), size=16, cache=str(tmp_path / "cache"))
    assert ensure_cache(data, progress=False) == cache


def test_train_says_which_cache_it_uses_before_reading_anything(folder, tmp_path, capsys, monkeypatch):
    """``train`` prints where it looks (the default folder, and --cache for a prepared one) first."""
    monkeypatch.setenv("CHESTXAI_CACHE", str(tmp_path / "home-cache"))

    def stop(config, **kw):
        raise KeyboardInterrupt  # the screen before training is what is tested

    monkeypatch.setattr("chestxai.train.loop.train", stop)
    argv = ["train", "--source", "folder", "--root", str(folder), "--size", "16", "--no-progress"]
    assert main(argv) == 130
    shown = capsys.readouterr().out
    assert f"under {tmp_path / 'home-cache' / 'prepared'}" in shown and "--cache DIR" in shown
    cache, _ = _prepare(folder, tmp_path / "cache", capsys)
    assert main([*argv, "--set", f"data.cache_dir={cache}"]) == 130
    assert f"data: the prepared cache {cache}" in capsys.readouterr().out

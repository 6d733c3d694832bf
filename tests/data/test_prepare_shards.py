"""prepare --shard K/N + --merge-shards N (issue 14): the merged cache equals the one-process cache
byte for byte, shards are resumable and locked, a missing shard or a bad K/N is a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from synth_images import gradient, write_png
from test_prepare import cache_files, synthetic_table

from chestxai.cli import main
from chestxai.data.cache import PreparedCache
from chestxai.data.prepare import PrepareError, prepare
from chestxai.data.shards import DONE, block, parse_shard, prepare_sharded, shard_area, shard_dir
from chestxai.locks import LockedError, exclusive

SIZE = 16


def folder_of_images(root: Path, n: int = 13) -> Path:
    """``n`` PNGs of varied sizes in two class folders, plus two files that cannot be decoded."""
    for i in range(n):
        cls = root / ("normal" if i % 3 else "pneumonia")
        cls.mkdir(parents=True, exist_ok=True)
        write_png(cls / f"img{i:02d}.png", gradient(30 + i % 5, 40 + i % 7))
    (root / "normal" / "zero.png").write_bytes(b"")
    (root / "pneumonia" / "text.png").write_text("not an image\n")
    return root


def cli(root: Path, out: Path, *extra: str) -> list[str]:
    return ["prepare", "--source", "folder", "--root", str(root), "--size", str(SIZE), "--out", str(out),
            "--workers", "1", "--no-progress", *extra]  # fmt: skip


def masked_table(src: Path):
    """Images with a box each and masks (PNG, RLE, an empty one): every table part a shard splits."""
    from chestxai.data.masks import rle_encode

    src.mkdir(parents=True, exist_ok=True)
    native = np.zeros((64, 64), np.uint8)
    native[16:48, 8:24] = 1
    Image.fromarray(native * 255).save(src / "m0.png")
    rows = [{"image_id": "img0", "label": "Lungs", "kind": "png", "ref": "m0.png"}]
    rows += [{"image_id": f"img{i}", "label": "Pneumothorax", "kind": "rle", "ref": rle_encode(np.roll(native, i))}
             for i in range(1, 6)]  # fmt: skip
    rows.append({"image_id": "img6", "label": "Pneumothorax", "kind": "rle", "ref": "-1"})
    masks = pd.DataFrame(rows).assign(height=64, width=64)
    table = synthetic_table(src, n=9, masks=masks)
    (src / "img4.png").write_bytes(b"broken")  # a bad image: its mask has no row either
    return table


def test_shards_then_merge_equal_the_one_process_cache_with_masks_and_bad_items(tmp_path):
    table = masked_table(tmp_path / "src")
    single = prepare(table, size=SIZE, out=tmp_path / "single", workers=1, progress=False)
    out = tmp_path / "sharded"
    folders = [
        prepare_sharded(table, size=SIZE, out=out, workers=1, progress=False, shard=(k, 2)) for k in (1, 2)
    ]
    assert [f.name for f in folders] == ["shard-0001-of-0002", "shard-0002-of-0002"]
    assert all((f / DONE).exists() for f in folders) and not list(out.glob("*/meta.json"))
    merged = prepare_sharded(table, size=SIZE, out=out, workers=1, progress=False, merge_shards=2)

    assert merged.name == single.name  # the same key, so the same directory name
    assert cache_files(merged) == cache_files(single)  # images, masks, index, labels, boxes, meta, report
    a, b = PreparedCache(single), PreparedCache(merged)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert [s["image_id"] for s in b.report["skipped"]] == ["img4"]
    assert not shard_area(merged).exists() and not (merged / ".work").exists()
    # after the merge a shard has nothing to do, and merging again reuses the cache
    assert prepare_sharded(table, size=SIZE, out=out, workers=1, progress=False, shard=(2, 2)) == merged
    assert prepare_sharded(table, size=SIZE, out=out, workers=1, progress=False, merge_shards=2) == merged


def test_cli_shards_in_parallel_processes_then_merge_equal_one_process(tmp_path, capsys):
    root = folder_of_images(tmp_path / "imgs")
    assert main(cli(root, tmp_path / "single")) == 0
    single = Path(capsys.readouterr().out.splitlines()[0])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "sharded"
    jobs = [
        subprocess.Popen([sys.executable, "-m", "chestxai", *cli(root, out, "--shard", f"{k}/2")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in (1, 2)
    ]  # fmt: skip
    outputs = [j.communicate(timeout=120) for j in jobs]
    assert [j.returncode for j in jobs] == [0, 0], outputs
    assert "--merge-shards 2" in outputs[0][0] and "shard 1/2" in outputs[0][0]
    skipped_per_shard = [o[0].count(".png:") for o in outputs]
    assert sum(skipped_per_shard) == 2  # each bad file is listed by the shard that met it
    assert main(cli(root, out, "--merge-shards", "2")) == 0
    printed = capsys.readouterr().out
    merged = Path(printed.splitlines()[0])
    assert merged.name == single.name and "skipped 2 image(s)" in printed
    assert cache_files(merged) == cache_files(single)


def test_a_missing_or_unfinished_shard_is_named_at_merge(tmp_path, capsys):
    root = folder_of_images(tmp_path / "imgs")
    out = tmp_path / "c"
    assert main(cli(root, out, "--shard", "2/4")) == 0
    capsys.readouterr()
    # shard 3 started but was killed before it finished: its folder exists without done.json
    env = {**os.environ, "CHESTXAI_CRASH_AT": "prepare:after-item@2"}
    done = subprocess.run([sys.executable, "-m", "chestxai", *cli(root, out, "--shard", "3/4")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 137
    assert main(cli(root, out, "--merge-shards", "4")) == 2
    err = capsys.readouterr().err
    assert "missing (never started here): 1, 4" in err and "unfinished" in err and ": 3 (of 4" in err
    assert "--shard K/4 for each missing or unfinished K" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(PrepareError, match="N=4: merge with that N"):
        prepare_sharded("folder", root, size=SIZE, out=out, workers=1, progress=False, merge_shards=3)
    # a shard still running (its lock held) is named as such
    area = next(d for d in out.iterdir() if d.name.endswith(".shards"))
    with exclusive(area / "shard-0001-of-0004"), pytest.raises(PrepareError, match="still running: 1"):
        prepare_sharded("folder", root, size=SIZE, out=out, workers=1, progress=False, merge_shards=4)
    # shard 3 resumes where it stopped; the others run; the merge equals one process
    for k in (1, 3, 4):
        assert main(cli(root, out, "--shard", f"{k}/4")) == 0
    capsys.readouterr()
    assert main(cli(root, out, "--merge-shards", "4")) == 0
    merged = Path(capsys.readouterr().out.splitlines()[0])
    single = prepare("folder", root, size=SIZE, out=tmp_path / "single", workers=1, progress=False)
    assert cache_files(merged) == cache_files(single)


def test_a_shard_being_written_refuses_a_second_writer_and_the_merge(tmp_path):
    root = folder_of_images(tmp_path / "imgs", n=5)
    first = prepare_sharded(
        "folder", root, size=SIZE, out=tmp_path / "c", workers=1, progress=False, shard="1/2"
    )
    prepare_sharded("folder", root, size=SIZE, out=tmp_path / "c", workers=1, progress=False, shard="2/2")
    with exclusive(first):
        with pytest.raises(LockedError, match="shard 1/2"):
            prepare_sharded(
                "folder",
                root,
                size=SIZE,
                out=tmp_path / "c",
                workers=1,
                progress=False,
                shard="1/2",
                force=True,
            )
        with pytest.raises(PrepareError, match="still running: 1 "):
            prepare_sharded(
                "folder", root, size=SIZE, out=tmp_path / "c", workers=1, progress=False, merge_shards=2
            )


@pytest.mark.parametrize(
    "spec, message",
    [("0/2", "between 1 and 2"), ("3/2", "between 1 and 2"), ("2", "expected K/N"), ("a/b", "expected K/N"),
     ("1/0", "at least 1"), ("-1/2", "between 1 and 2")],
)  # fmt: skip
def test_bad_shard_specs_are_one_line_errors_before_anything_is_read(tmp_path, capsys, spec, message):
    assert main(cli(tmp_path / "does-not-exist", tmp_path / "c", f"--shard={spec}")) == 2
    err = capsys.readouterr().err
    assert message in err and "--shard" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match=message):
        parse_shard(spec)
    assert not (tmp_path / "c").exists()


def test_merge_shards_must_be_positive_and_excludes_shard(tmp_path, capsys):
    root = folder_of_images(tmp_path / "imgs", n=3)
    assert main(cli(root, tmp_path / "c", "--merge-shards", "0")) == 2
    assert "at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(cli(root, tmp_path / "c", "--merge-shards", "2", "--shard", "1/2"))


def test_blocks_cover_every_row_once_and_more_shards_than_rows_work(tmp_path):
    for total in (0, 1, 7, 100):
        for n in (1, 2, 3, 8):
            rows = [r for k in range(1, n + 1) for r in range(*block(k, n, total))]
            assert rows == list(range(total))
    # 3 in-memory images over 5 shards: two shards are empty and still merge into the same cache
    from chestxai.data.table import ImageTable

    images = np.random.default_rng(0).integers(0, 255, (3, SIZE, SIZE), dtype=np.uint8)
    frame = pd.DataFrame({"image_id": ["a", "b", "c"], "path": "", "patient_id": ["a", "b", "c"], "view": "PA",
                          "split": ["train", "val", "test"]})  # fmt: skip
    table = ImageTable(
        "synthetic", frame, ["x"], np.array([[0], [1], [0]], np.float32), "binary", arrays=images
    )
    single = prepare(table, size=SIZE, out=tmp_path / "s", workers=0, progress=False)
    for k in range(1, 6):
        prepare_sharded(table, size=SIZE, out=tmp_path / "m", workers=0, progress=False, shard=(k, 5))
    assert json.loads((shard_dir(tmp_path / "m" / single.name, 1, 5) / DONE).read_text())["n_items"] == 0
    merged = prepare_sharded(table, size=SIZE, out=tmp_path / "m", workers=0, progress=False, merge_shards=5)
    assert cache_files(merged) == cache_files(single)


@pytest.mark.parametrize("point", ["prepare:after-images", "prepare:after-meta"])
def test_a_merge_killed_while_writing_resumes_to_the_same_cache(tmp_path, capsys, point):
    root = folder_of_images(tmp_path / "imgs", n=6)
    out = tmp_path / "c"
    for k in (1, 2):
        assert main(cli(root, out, "--shard", f"{k}/2")) == 0
    env = {**os.environ, "CHESTXAI_CRASH_AT": point}
    done = subprocess.run([sys.executable, "-m", "chestxai", *cli(root, out, "--merge-shards", "2")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 137, done.stderr[-2000:]
    capsys.readouterr()
    assert main(cli(root, out, "--merge-shards", "2")) == 0
    merged = Path(capsys.readouterr().out.splitlines()[0])
    single = prepare("folder", root, size=SIZE, out=tmp_path / "single", workers=1, progress=False)
    assert cache_files(merged) == cache_files(single)
    assert not shard_area(merged).exists() and not (merged / ".work").exists()

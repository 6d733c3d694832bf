"""prepare(): cache layout, boxes after resizing, bad files, strict, resume, reuse, masks, CLI, real data."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from synth_images import gradient, write_dicom, write_png

from chestxai.cli import main
from chestxai.data import prepare as prep
from chestxai.data import worker_pool
from chestxai.data.cache import PreparedCache
from chestxai.data.prepare import PrepareError, prepare
from chestxai.data.table import ImageTable, empty_boxes

SIZE = 32


def rect_image(h: int, w: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """Dark image with a bright rectangle at ``box`` = fractions (x, y, w, h)."""
    a = np.full((h, w), 20, np.uint8)
    x, y, bw, bh = box
    a[round(y * h) : round((y + bh) * h), round(x * w) : round((x + bw) * w)] = 230
    return a


def synthetic_table(folder, n=6, boxes=True, masks=None) -> ImageTable:
    """``n`` PNGs of different sizes, each with a bright box at a known place, two patients each."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, box_rows = [], []
    for i in range(n):
        h, w = 60 + 7 * (i % 6), 80 - 5 * (i % 6)
        box = (0.25, 0.5, 0.5, 0.25) if i % 2 else (0.1, 0.1, 0.3, 0.4)
        write_png(folder / f"img{i}.png", rect_image(h, w, box))
        rows.append(
            {
                "image_id": f"img{i}",
                "path": f"img{i}.png",
                "patient_id": f"p{i // 2}",
                "view": "PA",
                "split": "",
            }
        )
        box_rows.append(
            {"image_id": f"img{i}", "label": "Mass", "x": box[0], "y": box[1], "w": box[2], "h": box[3]}
        )
    labels = (np.arange(n) % 2)[:, None].astype(np.float32)
    kw = {"masks": masks} if masks is not None else {}
    return ImageTable(
        source="synthetic",
        frame=pd.DataFrame(rows),
        label_names=["Mass"],
        labels=labels,
        task="binary",
        boxes=pd.DataFrame(box_rows) if boxes else empty_boxes(),
        root=folder,
        **kw,
    )


def cache_files(path):
    """Everything in a cache that must be identical between runs (the report minus timings)."""
    report = json.loads((path / "prepare_report.json").read_text())
    report.pop("seconds_last_run")
    files = {  # (hidden files: the lock, whose text is the last writer's pid)
        f.name: f.read_bytes()
        for f in path.iterdir()
        if f.is_file() and f.name != "prepare_report.json" and not f.name.startswith(".")
    }
    return files, report


# --- layout, boxes -----------------------------------------------------------------------------
def test_prepare_writes_a_readable_cache_with_boxes_in_cache_pixels(tmp_path):
    table = synthetic_table(tmp_path / "src")
    path = prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    assert path.parent == tmp_path / "out" and path.name.startswith(f"synthetic-{SIZE}px-")
    assert not (path / prep.WORK).exists()
    cache = PreparedCache(path)
    assert len(cache) == 6 and cache.images.shape == (6, SIZE, SIZE) and cache.task == "binary"
    np.testing.assert_array_equal(cache.labels, table.labels)
    assert list(cache.frame["image_id"]) == [f"img{i}" for i in range(6)]
    boxes = cache.boxes
    assert list(boxes["row"]) == list(range(6))
    for _, b in boxes.iterrows():
        x, y, w, h = (int(round(b[c])) for c in "xywh")
        img = cache.images[int(b["row"])].astype(float)
        inside = img[y + 1 : y + h - 1, x + 1 : x + w - 1]
        outside = img.copy()
        outside[max(y - 1, 0) : y + h + 1, max(x - 1, 0) : x + w + 1] = np.nan
        assert inside.mean() > 200 and np.nanmean(outside) < 40, f"box of {b['image_id']} is misplaced"
    original = table.boxes.set_index("image_id")
    np.testing.assert_allclose(boxes.set_index("image_id")[list("xywh")], original[list("xywh")] * SIZE)


def test_resize_matches_a_lanczos_resize_of_the_original(tmp_path):
    table = synthetic_table(tmp_path / "src", n=2)
    cache = PreparedCache(prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False))
    src = np.asarray(
        Image.open(tmp_path / "src" / "img1.png").convert("F").resize((SIZE, SIZE), Image.LANCZOS)
    )
    assert np.abs(cache.images[1].astype(float) - np.clip(src, 0, 255).round()).max() <= 1


def test_in_memory_arrays_at_native_size_are_exact(tmp_path):
    arrays = np.stack([gradient(SIZE, SIZE), gradient(SIZE, SIZE)[::-1]])
    frame = pd.DataFrame(
        {"image_id": ["a", "b"], "path": ["", ""], "patient_id": ["a", "b"], "view": "", "split": "train"}
    )
    table = ImageTable("mem", frame, ["y"], np.array([[0.0], [1.0]]), "binary", arrays=arrays)
    cache = PreparedCache(prepare(table, size=SIZE, out=tmp_path, workers=1, progress=False))
    np.testing.assert_array_equal(np.asarray(cache.images), arrays)
    assert cache.has_splits()


class ExitOnUnpickle:
    """Kills the worker process that unpickles it: stands in for a decoder that segfaults."""

    def __reduce__(self):
        return (os._exit, (7,))


def ragged_table(items) -> ImageTable:
    arrays = np.empty(len(items), dtype=object)
    arrays[:] = items
    ids = [f"m{i}" for i in range(len(items))]
    frame = pd.DataFrame({"image_id": ids, "path": "", "patient_id": ids, "view": "", "split": ""})
    return ImageTable("ragged", frame, ["y"], np.zeros((len(items), 1)), "binary", arrays=arrays)


def test_ragged_in_memory_images_are_resized(tmp_path):
    table = ragged_table([gradient(40, 50), gradient(20, 30), gradient(SIZE, SIZE)])
    cache = PreparedCache(prepare(table, size=SIZE, out=tmp_path, workers=1, progress=False))
    assert cache.images.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(cache.images[2], gradient(SIZE, SIZE))


def test_a_crashing_worker_skips_only_its_image(tmp_path):
    items = [gradient(40, 40 + i) for i in range(20)]
    items[13] = ExitOnUnpickle()
    path = prepare(ragged_table(items), size=SIZE, out=tmp_path, workers=2, progress=False)
    cache = PreparedCache(path)
    assert len(cache) == 19 and "m13" not in set(cache.frame["image_id"])
    (skip,) = cache.report["skipped"]
    assert skip["image_id"] == "m13" and "crashed" in skip["reason"]


# --- bad files, strict -------------------------------------------------------------------------
def bad_folder(root):
    root.mkdir()
    for i in range(3):
        write_png(root / f"good{i}.png", gradient())
    full = write_png(root / "full.png", np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    (root / "truncated.png").write_bytes(full.read_bytes()[:3000])
    full.unlink()
    (root / "zero.png").write_bytes(b"")
    (root / "text.png").write_text("not an image at all\n" * 20)
    write_dicom(root / "nopixels.dcm", gradient(), pixels=False)
    return root


def test_bad_files_are_skipped_and_reported_with_reasons(tmp_path, caplog):
    root = bad_folder(tmp_path / "bad")
    path = prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    cache = PreparedCache(path)
    assert len(cache) == 3 and sorted(cache.frame["image_id"].str[:4]) == ["good"] * 3
    report = json.loads((path / "prepare_report.json").read_text())
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"truncated.png", "zero.png", "text.png", "nopixels.dcm"}
    assert "truncated" in reasons["truncated.png"]
    assert "empty file" in reasons["zero.png"]
    assert "not an image" in reasons["text.png"]
    assert "without pixel data" in reasons["nopixels.dcm"]
    assert report["n_skipped"] == 4 and report["n_ok"] == 3
    summary = prep.summary(path)
    assert "skipped 4 image(s)" in summary and "zero.png" in summary
    assert "4 of 7 images skipped" in caplog.text


def test_strict_fails_naming_the_files_and_the_fix(tmp_path):
    root = bad_folder(tmp_path / "bad")
    with pytest.raises(PrepareError, match="without --strict") as err:
        prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, strict=True, progress=False)
    assert "4 image(s)" in str(err.value)
    (cache_dir,) = (tmp_path / "out").iterdir()
    assert not (cache_dir / "meta.json").exists()  # never a half-valid cache
    # the same inputs without --strict finish from the work already done
    assert PreparedCache(prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False))


def test_nothing_decodable_is_an_error(tmp_path):
    root = tmp_path / "junk"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    with pytest.raises(PrepareError, match="none of the 1 images"):
        prepare("folder", root, size=SIZE, out=tmp_path / "out", workers=1, progress=False)


# --- resume, reuse -----------------------------------------------------------------------------
class Interrupt(Exception):
    pass


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_interruption_gives_an_identical_cache(tmp_path, workers):
    table = synthetic_table(tmp_path / "src", n=40)
    fresh = prepare(table, size=SIZE, out=tmp_path / "fresh", workers=1, progress=False)

    def stop_at_13(done, total):
        if done == 13:
            raise Interrupt

    with pytest.raises(Interrupt):
        prepare(
            table,
            size=SIZE,
            out=tmp_path / "resumed",
            workers=workers,
            progress=False,
            on_progress=stop_at_13,
        )
    (partial,) = (tmp_path / "resumed").iterdir()
    assert not (partial / "meta.json").exists()
    status = np.fromfile(partial / prep.WORK / "status.u8", np.uint8)
    assert (status == prep.OK).sum() == 13

    seen = []
    resumed = prepare(
        table,
        size=SIZE,
        out=tmp_path / "resumed",
        workers=1,
        progress=False,
        on_progress=lambda d, t: seen.append(d),
    )
    assert resumed.name == fresh.name and seen[0] == 14  # only the remaining items were decoded
    assert cache_files(resumed) == cache_files(fresh)


def test_rerun_reuses_the_cache_and_a_changed_input_does_not(tmp_path, monkeypatch):
    table = synthetic_table(tmp_path / "src", n=4)
    first = prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False)

    def fail(*a, **k):
        raise AssertionError("a hash hit must not decode anything")

    monkeypatch.setattr(worker_pool, "work", fail)
    assert prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False) == first
    monkeypatch.undo()
    assert prepare(table, size=SIZE + 8, out=tmp_path / "out", workers=1, progress=False) != first
    write_png(tmp_path / "src" / "img0.png", gradient())  # same name, new content (size/mtime change)
    changed = prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    assert changed != first and PreparedCache(first) and PreparedCache(changed)


def test_force_rebuilds(tmp_path):
    table = synthetic_table(tmp_path / "src", n=2)
    first = prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False)
    before = cache_files(first)
    assert prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False, force=True) == first
    assert cache_files(first) == before


# --- masks -------------------------------------------------------------------------------------
def test_masks_are_resized_and_indexed(tmp_path):
    from chestxai.data.masks import rle_encode

    src = tmp_path / "src"
    src.mkdir()
    native = np.zeros((64, 64), np.uint8)
    native[16:48, 8:24] = 1  # x 1/8..3/8, y 1/4..3/4
    Image.fromarray(native * 255).save(src / "m0.png")
    masks = pd.DataFrame(
        [
            {"image_id": "img0", "label": "Lungs", "kind": "png", "ref": "m0.png", "height": 64, "width": 64},
            # two RLE rows of one image and label are one mask (SIIM lists regions separately)
            {
                "image_id": "img1",
                "label": "Pneumothorax",
                "kind": "rle",
                "ref": rle_encode(native),
                "height": 64,
                "width": 64,
            },
            {
                "image_id": "img1",
                "label": "Pneumothorax",
                "kind": "rle",
                "ref": rle_encode(native[:, ::-1]),
                "height": 64,
                "width": 64,
            },
            {
                "image_id": "img2",
                "label": "Pneumothorax",
                "kind": "rle",
                "ref": "-1",
                "height": 64,
                "width": 64,
            },
        ]
    )
    table = synthetic_table(src, n=3, masks=masks)
    cache = PreparedCache(prepare(table, size=SIZE, out=tmp_path / "out", workers=1, progress=False))
    idx = cache.mask_index
    assert list(idx["image_id"]) == ["img0", "img1"] and list(idx["row"]) == [0, 1]
    assert cache.masks.shape == (2, SIZE, SIZE) and set(np.unique(cache.masks)) <= {0, 1}
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[8:24, 4:12] = 1
    np.testing.assert_array_equal(cache.masks[0], expected)
    np.testing.assert_array_equal(cache.masks[1], expected | expected[:, ::-1])
    assert cache.report["masks"]["n_empty"] == 1  # the "-1" row: known empty, not stored


# --- CLI ---------------------------------------------------------------------------------------
def test_cli_prepare_prints_path_and_summary(tmp_path, capsys):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(2):
        write_png(root / f"x{i}.png", gradient())
    rc = main(
        [
            "prepare",
            "--source",
            "folder",
            "--root",
            str(root),
            "--size",
            "16",
            "--out",
            str(tmp_path / "c"),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and PreparedCache(out[0]).size == 16
    assert "2 images at 16x16 px" in out[1]


def test_cli_bad_option_is_a_clear_error(tmp_path, capsys):
    rc = main(["prepare", "--source", "folder", "--root", str(tmp_path), "--option", "oops"])
    assert rc == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_cli_help_mentions_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = capsys.readouterr().out
    for flag in ("--source", "--root", "--size", "--out", "--workers", "--strict", "--option"):
        assert flag in text


# --- real data ---------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_nih_boxes_land_where_they_should(shared_data, tmp_path):
    root = shared_data / "nih-bbox"
    size = 128
    path = prepare("nih", root, size=size, out=tmp_path, workers=2, progress=False)
    cache = PreparedCache(path)
    assert len(cache) == 596 and cache.report["n_skipped"] == 0
    listed = pd.read_csv(root / "BBox_List_2017.csv")
    first = listed.iloc[0]
    got = cache.boxes[cache.boxes["image_id"] == first["Image Index"]].iloc[0]
    for c in "xywh":  # official boxes are in 1024-px space; the cache is size px
        assert got[c] == pytest.approx(first[c] * size / 1024, rel=1e-6)
    # the cached pixels are the 512-px file resized: the box covers the same content
    src = np.asarray(
        Image.open(root / "images" / first["Image Index"]).convert("F").resize((size, size), Image.LANCZOS)
    )
    row = int(got["row"])
    x, y, w, h = (int(round(got[c])) for c in "xywh")
    np.testing.assert_allclose(
        cache.images[row][y : y + h, x : x + w].mean(),
        np.clip(src, 0, 255)[y : y + h, x : x + w].mean(),
        atol=1,
    )


@pytest.mark.realdata
@pytest.mark.parametrize(
    "source, folder", [("covid-collection", "covid-collection"), ("folder", "dicom"), ("folder", "samples")]
)
def test_real_sources_prepare_without_crash(shared_data, tmp_path, source, folder):
    path = prepare(source, shared_data / folder, size=64, out=tmp_path, workers=2, progress=False)
    cache = PreparedCache(path)
    report = cache.report
    assert len(cache) == report["n_ok"] > 0
    assert report["n_ok"] + report["n_skipped"] == report["n_total"]
    assert cache.images.shape == (len(cache), 64, 64) and np.asarray(cache.images).std() > 10
    if source == "covid-collection":  # lung masks (lungVAE) come along, resized to the cache size
        assert len(cache.mask_index) > 100 and cache.masks.shape[1:] == (64, 64)
        assert 0.05 < np.asarray(cache.masks).mean() < 0.6
    if folder == "dicom":  # the MONOCHROME1 twin is stored inverted
        a, b = (np.asarray(cache.images[i], int) for i in range(2))
        np.testing.assert_allclose(a + b, 255, atol=1)

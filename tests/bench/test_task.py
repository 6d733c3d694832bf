"""The task through the real cache writer: splits per background, masks in the cache."""

from __future__ import annotations

import numpy as np
import pytest
from bench_helpers import write_background_folder

from chestxai.bench.task import FINDING, TaskSpec, build_task, read_backgrounds, write_task
from chestxai.data.cache import PreparedCache


def test_backgrounds_go_through_prepare_and_the_task_cache_holds_the_lesion_masks(
    background_folder, tmp_path
):
    bg, ids = read_backgrounds("folder", background_folder, 48, cache=tmp_path / "c", progress=False)
    assert bg.shape == (48, 48, 48) and bg.dtype == np.uint8 and len(set(ids)) == 48
    task = build_task(bg, ids, TaskSpec(size=48, variants=3), progress=False)
    assert len(task.images) == 144 and task.labels.mean() == pytest.approx(0.5)
    cache = PreparedCache(write_task(task, tmp_path / "task", "bench-test", progress=False))
    assert len(cache) == 144 and cache.label_names == [FINDING]
    frame = cache.frame
    # every copy of a background sits in one split; all three splits exist
    assert (frame.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(frame["split"]) == {"train", "val", "test"}
    idx = cache.mask_index
    assert set(idx["label"]) == {FINDING} and len(idx) == int(task.labels.sum())
    for i, r in enumerate(idx.itertuples()):  # the cache's masks are the drawn masks, pixel for pixel
        assert np.array_equal(np.asarray(cache.masks[i]), task.lesion_masks[int(r.row)])
    assert np.array_equal(cache.labels[:, 0], task.labels)


def test_task_is_deterministic_for_a_seed():
    bg = np.random.default_rng(0).integers(0, 255, (20, 40, 40), dtype=np.uint8)
    ids = [str(i) for i in range(20)]
    a = build_task(bg, ids, TaskSpec(size=40, seed=3), progress=False)
    b = build_task(bg, ids, TaskSpec(size=40, seed=3), progress=False)
    c = build_task(bg, ids, TaskSpec(size=40, seed=4), progress=False)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)


def test_too_few_backgrounds_or_a_wrong_shape_are_refused(tmp_path):
    root = write_background_folder(tmp_path / "few", 6, size=32)
    with pytest.raises(ValueError, match="at least 20 backgrounds"):
        read_backgrounds("folder", root, 48, cache=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="backgrounds must be"):
        build_task(np.zeros((20, 32, 32), np.uint8), [str(i) for i in range(20)], TaskSpec(size=48))

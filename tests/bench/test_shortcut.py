"""The shortcut builder: the cue appears in the stated class (lesion images) only."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.bench.shortcut import add_cue, tag_mask
from chestxai.bench.task import CUE, FINDING, TaskSpec, build_task, task_table


def _backgrounds(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 160, size=(n, size, size), dtype=np.uint8), [f"bg{i:03d}" for i in range(n)]


@pytest.mark.parametrize("cue", ["tag", "band"])
def test_cue_only_in_the_lesion_class(cue):
    bg, ids = _backgrounds(24, 64)
    task = build_task(bg, ids, TaskSpec(size=64, shortcut=cue), progress=False)
    pos = task.labels == 1
    assert 0 < pos.sum() < len(pos)
    has_cue = np.array([m is not None for m in task.cue_masks])
    assert np.array_equal(has_cue, pos)  # every lesion image, and no other, carries the cue
    assert (task.frame["cue"] == cue).to_numpy().tolist() == pos.tolist()
    diff = task.images.astype(int) != task.clean_images.astype(int)
    assert not diff[~pos].any()  # negatives are their cue-free copies
    for i in np.flatnonzero(pos):  # positives differ from their clean copy only on the cue
        cue_px = task.cue_masks[i].astype(bool)
        assert diff[i][cue_px].mean() > 0.5 and not diff[i][~cue_px].any()


def test_cue_masks_go_into_the_table_for_lesion_images_only():
    bg, ids = _backgrounds(20, 48)
    task = build_task(bg, ids, TaskSpec(size=48, shortcut="tag"), progress=False)
    table = task_table(task, "t")
    cue_ids = set(table.masks.loc[table.masks["label"] == CUE, "image_id"])
    positive_ids = set(table.frame.loc[table.labels[:, 0] == 1, "image_id"])
    assert cue_ids == positive_ids
    clean = task_table(task, "t", clean=True)
    assert set(clean.masks["label"]) == {FINDING}


def test_tag_is_a_plate_with_a_letter_in_the_top_right_corner():
    plate, ink = tag_mask(128, np.random.default_rng(0))
    rows, cols = np.nonzero(plate)
    assert rows.max() < 40 and cols.min() > 80  # top right
    assert ink.any() and (ink <= plate).all() and ink.sum() < plate.sum()
    img, m = add_cue(np.zeros((128, 128), np.float32), "tag", np.random.default_rng(0))
    assert img[m.astype(bool)].max() > 0.9


def test_unknown_cue_is_refused():
    with pytest.raises(ValueError, match="unknown shortcut cue 'arrow'"):
        TaskSpec(shortcut="arrow")

"""The scorecard's localisation block on hand-made MapSets: every expected figure derived in a comment."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.scorecard.localisation import METRICS, item_scores, localisation_block
from chestxai.scorecard.maps import MapSet

S = 16  # map and image size
N_POS, N_NEG = 12, 4


def _squares(n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(0, S - 4, 2)) for _ in range(n)]


def _mapset(kind: str, split: str = "test", seed: int = 0, findings=("Nodule",)) -> MapSet:
    """``N_POS`` positives (a 4x4 lesion each) and ``N_NEG`` negatives, two items per patient.

    ``kind``: ``perfect`` (the map is 1 on the lesion, 0 elsewhere; on a negative a 4x4 blob at the
    corner), ``random`` (seeded uniform noise: the control)."""
    corners = _squares(N_POS, seed)
    n = N_POS + N_NEG
    truth, maps, boxes = [], np.zeros((n, S, S), np.float32), []
    for i in range(n):
        t = np.zeros((S, S), bool)
        if i < N_POS:
            r, c = corners[i]
            t[r : r + 4, c : c + 4] = True
            boxes.append([(float(c), float(r), 4.0, 4.0)])
        else:
            boxes.append([])
        truth.append(t)
        if kind == "perfect":
            maps[i] = t if i < N_POS else 0.0
            if i >= N_POS:
                maps[i, :4, :4] = 1.0
    if kind == "random":
        maps = np.random.default_rng(seed + 100).random((n, S, S)).astype(np.float32)
    probabilities = np.array([0.9] * N_POS + [0.1] * N_NEG)
    return MapSet(
        run="r",
        method=kind,
        layer="layer2",
        split=split,
        image_ids=[f"{split}{i}" for i in range(n)],
        findings=[findings[i % len(findings)] for i in range(n)],
        groups=[f"p{i // 2}" for i in range(n)],
        maps=maps,
        probabilities=probabilities,
        truth=truth,
        boxes=boxes,
    )


@pytest.fixture(scope="module")
def block():
    test, control = _mapset("perfect"), _mapset("random")
    val, control_val = _mapset("perfect", "val", seed=1), _mapset("random", "val", seed=1)
    return localisation_block(test, control, val, control_val, n_boot=200, seed=3)


def _val(ci):
    return ci["value"]


def test_perfect_map_scores_and_keys(block):
    assert block["n_items"] == N_POS + N_NEG and block["n_positive"] == N_POS
    assert block["n_groups"] == 8 and block["bootstrap"]["unit"] == "patient"
    assert block["bootstrap"]["n_boot"] == 200 and block["bootstrap"]["level"] == 0.95
    # the map is the lesion: argmax inside, AP 1, all mass and the top-16 pixels inside
    for m in ("hit_rate", "auprc", "relevance_mass", "relevance_rank"):
        assert _val(block[m]) == pytest.approx(1.0)
    # Otsu: IoU 1 on the 12 positives, 0 on the 4 negatives (a blob on an empty truth): 12 / 16
    assert _val(block["miou_otsu"]) == pytest.approx(0.75)
    # the box drawn from the map is the GT box: IoBB 1 > every T
    assert {k: _val(v) for k, v in block["iobb_accuracy"].items()} == {
        "0.1": 1.0,
        "0.25": 1.0,
        "0.5": 1.0,
        "0.75": 1.0,
        "0.9": 1.0,
    }
    assert set(METRICS) <= set(block) and "protocol" in block and "CheXlocalize" in block["protocol"]


def test_thresholds_and_cutoffs_tuned_on_val(block):
    # a binary map gives IoU 1 at every threshold: the first of the grid, 0.2. Cutoffs: at 0 and 0.1
    # the negatives (p 0.1, not < 0.1) keep their blob: mIoU 12/16; from 0.2 they are emptied and
    # left out: mIoU 1 -> 0.2
    assert block["thresholds"] == {"Nodule": pytest.approx(0.2)}
    assert block["probability_cutoffs"] == {"Nodule": pytest.approx(0.2)}
    assert _val(block["miou_tuned"]) == pytest.approx(1.0)
    assert block["control"]["thresholds"]["Nodule"] is not None


def test_beats_the_random_control_and_control_figures(block):
    control = block["control"]
    assert control["method"] == "random"
    # uniform noise: its mass inside a 16-pixel lesion is about 16 / 256 of the total
    assert _val(control["relevance_mass"]) == pytest.approx(16 / 256, abs=0.02)
    assert _val(control["hit_rate"]) < 0.5
    for m in ("hit_rate", "miou_otsu", "auprc", "relevance_mass", "relevance_rank"):
        vs = block["versus_control"][m]
        assert vs["better"] is True
        assert vs["difference"]["value"] == pytest.approx(_val(block[m]) - _val(control[m]))
    assert block["versus_control"]["iobb_accuracy"]["0.5"]["better"] is True


def test_ci_brackets_the_value(block):
    for ci in (block["control"]["relevance_mass"], block["control"]["auprc"], block["miou_otsu"]):
        assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
        assert ci["ci_low"] < ci["ci_high"]  # the noise does vary between replicates
    perfect = block["hit_rate"]
    assert perfect["ci_low"] == perfect["ci_high"] == 1.0


def test_per_finding_and_same_replicates():
    test = _mapset("perfect", findings=("Nodule", "Mass"))
    control = _mapset("random", findings=("Nodule", "Mass"))
    out = localisation_block(test, control, n_boot=100)
    assert set(out["per_finding"]) == {"Mass", "Nodule"}
    for f in ("Mass", "Nodule"):
        entry = out["per_finding"][f]
        # items alternate findings: 8 each, of which 6 positives (indices < 12)
        assert entry["n_items"] == 8 and entry["n_positive"] == 6
        assert _val(entry["hit_rate"]) == 1.0 and _val(entry["miou_otsu"]) == pytest.approx(6 / 8)
        assert set(entry["iobb_accuracy"]) == {"0.1", "0.25", "0.5", "0.75", "0.9"}
    assert set(out["control"]["per_finding"]) == {"Mass", "Nodule"}
    # without val: no tuned figures
    assert out["thresholds"] is None and _val(out["miou_tuned"]) is None
    assert out["versus_control"]["miou_tuned"]["better"] is False


def test_human_benchmark_percentage_decrease():
    test, control = _mapset("perfect"), _mapset("random")
    # humans segment every lesion exactly and leave the negatives empty (empty on empty: left out)
    human = {(test.image_ids[i], "Nodule"): test.truth[i].copy() for i in range(N_POS + N_NEG)}
    out = localisation_block(test, control, n_boot=100, human=human)
    h = out["human"]["miou_otsu"]
    assert out["human_items"] == N_POS + N_NEG
    # human mIoU 12/12 = 1; the method's Otsu mIoU 12/16 = 0.75: 100 * (1 - 0.75) / 1 = 25
    assert _val(h["human"]) == pytest.approx(1.0) and _val(h["method"]) == pytest.approx(0.75)
    assert _val(h["percentage_decrease"]) == pytest.approx(25.0)
    assert h["percentage_decrease"]["ci_low"] <= 25.0 <= h["percentage_decrease"]["ci_high"]
    assert "hit_rate" not in out["human"]  # no points given


def test_human_points_hit_rate():
    test, control = _mapset("perfect"), _mapset("random")
    corners = _squares(N_POS, 0)
    # each human points at its lesion's top-left pixel (x = col, y = row), but the first points
    # outside (at the far corner of the image from the lesion): hit rate 11 / 12
    human = {(test.image_ids[i], "Nodule"): np.array([[c, r]]) for i, (r, c) in enumerate(corners)}
    r0, c0 = corners[0]
    human[(test.image_ids[0], "Nodule")] = np.array([[S - 1 if c0 < 8 else 0, S - 1 if r0 < 8 else 0]])
    out = localisation_block(test, control, n_boot=100, human=human)
    h = out["human"]["hit_rate"]
    assert _val(h["human"]) == pytest.approx(11 / 12) and _val(h["method"]) == 1.0
    # 100 * (11/12 - 1) / (11/12) = -100/11: the method points better than these humans
    assert _val(h["percentage_decrease"]) == pytest.approx(-100 / 11)
    assert "miou_otsu" not in out["human"]


def test_all_negative_and_no_truth():
    ms = _mapset("perfect")
    negatives = MapSet(**{**ms.__dict__, "truth": [np.zeros((S, S), bool)] * len(ms)})
    control = MapSet(**{**_mapset("random").__dict__, "truth": negatives.truth})
    out = localisation_block(negatives, control, n_boot=50)
    assert out["n_positive"] == 0 and _val(out["hit_rate"]) is None and _val(out["auprc"]) is None
    # the 12 lesion maps and 4 corner blobs are all drawn on empty truths: IoU 0 each
    assert _val(out["miou_otsu"]) == 0.0
    none = MapSet(**{**ms.__dict__, "truth": [None] * len(ms)})
    assert localisation_block(none, none, n_boot=10) is None


def test_truth_at_image_size_and_misaligned_control():
    ms = _mapset("perfect")
    big = [np.kron(t, np.ones((2, 2), bool)) for t in ms.truth]  # 32 px images, maps at 16 px
    up = MapSet(**{**ms.__dict__, "truth": big, "boxes": []})
    scores = item_scores(up, up.scored())
    # the map is resized bilinearly to 32 px: its argmax stays inside the doubled lesion
    assert np.nanmean(scores["hit_rate"]) == 1.0
    other = MapSet(**{**ms.__dict__, "image_ids": list(reversed(ms.image_ids))})
    with pytest.raises(ValueError, match="same items"):
        localisation_block(ms, other, n_boot=10)

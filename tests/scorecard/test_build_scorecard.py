"""build_scorecard on tiny runs: the documented keys, the no-ground-truth case, repeatability of a
run with itself, the items' truth (boxes rasterised, known negatives, skipped positives)."""

from __future__ import annotations

import numpy as np
import pytest
from scorecard_helpers import box_table

from chestxai.rundir.jsonfile import read_json
from chestxai.scorecard.run import build_scorecard
from chestxai.scorecard.settings import ScorecardSettings

CI_KEYS = {"value", "ci_low", "ci_high"}


def _settings(run, tmp_path, **kw) -> ScorecardSettings:
    base = dict(run=str(run), methods=("gradcam",), layers=("layer3",), n_boot=20, sanity_limit=4,
                limit=4, device="cpu", out=str(tmp_path / "card"))  # fmt: skip
    return ScorecardSettings(**(base | kw))


def test_scorecard_json_has_every_documented_key(boxed_run, tmp_path):
    card = build_scorecard(_settings(boxed_run, tmp_path))
    on_disk = read_json(tmp_path / "card" / "scorecard.json")
    assert (
        on_disk["generator"] == "chestxai scorecard" and on_disk["methods"].keys() == card["methods"].keys()
    )
    entry = on_disk["methods"]["gradcam"]["layer3"]
    loc = entry["localization"]
    for key in ("hit_rate", "miou_otsu", "miou_tuned", "auprc"):
        assert set(loc[key]) >= CI_KEYS, key
        assert set(loc["control"][key]) >= CI_KEYS, key
    assert {"baseline_ssim", "pass"} <= set(entry["randomization"])
    assert {"ssim", "n_pairs"} <= set(entry["image_agreement"])
    assert {"passes", "fails", "trusted", "line"} <= set(entry["verdict"])
    for key in ("recommended", "control", "run", "split", "versions", "seconds", "peak_rss_mb", "protocols"):
        assert key in on_disk, key
    assert "repeatability" not in entry and "reproducibility" not in entry  # no --seeds / --architectures
    assert on_disk["ground_truth"].startswith("cache") and on_disk["val_split"] == "val"
    # 4 boxed test images (limit) + known negatives of Pneumonia among the test images
    items = on_disk["items"]
    assert items["n_positive"] == 4 and items["n_negative"] >= 1 and items["findings"] == ["Pneumonia"]
    # boxed images left out by --limit are not "positives without geometry"
    boxed = set(box_table(48)["image_id"])
    assert not {s["item"].split("/")[0] for s in on_disk["skipped"]} & boxed


def test_a_run_with_itself_as_seed_repeats_exactly(boxed_run, tmp_path):
    card = build_scorecard(_settings(boxed_run, tmp_path, seeds=(str(boxed_run), str(boxed_run))))
    rep = card["methods"]["gradcam"]["layer3"]["repeatability"]
    assert rep["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert {"ssim", "baseline_ssim", "pass", "spread"} <= set(rep)
    assert rep["pass"] is True


def test_without_ground_truth_only_randomisation_and_repeatability(plain_run, tmp_path):
    # EigenCAM: an untrained net's Grad-CAM maps are often all zero (nothing to compare)
    card = build_scorecard(_settings(plain_run, tmp_path, methods=("eigencam",), seeds=(str(plain_run),)))
    entry = card["methods"]["eigencam"]["layer3"]
    assert entry["localization"] is None and "no ground truth" in entry["localization_note"]
    assert card["ground_truth"] is None and card["val_split"] is None
    assert entry["randomization"]["n_images"] == 4  # the first --sanity-limit images, no truth needed
    assert entry["repeatability"]["ssim"] == pytest.approx(1.0, abs=1e-9)


def test_a_method_off_its_layer_is_listed_not_applicable(boxed_run, tmp_path):
    card = build_scorecard(_settings(boxed_run, tmp_path, methods=("cam",), layers=("layer2",)))
    assert "final feature map" in card["methods"]["cam"]["layer2"]["not_applicable"]


def test_a_file_the_command_did_not_write_is_kept(boxed_run, tmp_path):
    out = tmp_path / "card"
    out.mkdir()
    (out / "scorecard.json").write_text('{"mine": 1}\n')
    with pytest.raises(FileExistsError, match="not written by this command"):
        build_scorecard(_settings(boxed_run, tmp_path))
    assert read_json(out / "scorecard.json") == {"mine": 1}


def test_unknown_layer_names_the_stages(boxed_run, tmp_path):
    from chestxai.errors import UserError

    with pytest.raises(UserError, match="layer9.*layer1"):
        build_scorecard(_settings(boxed_run, tmp_path, layers=("layer9",)))


def test_rasterise_covers_exactly_the_box_pixels():
    from chestxai.explain.localization import boxes_mask as rasterise  # what collect draws truth with

    mask = rasterise([(4, 6, 10, 8)], (32, 32))
    assert mask.sum() == 80 and mask[6:14, 4:14].all()
    assert not rasterise([(30, 30, 10, 10)], (32, 32))[:30].any()  # clipped at the border
    assert rasterise([(30, 30, 10, 10)], (32, 32)).sum() == 4


def test_settings_refuse_tuning_on_the_scored_split():
    from chestxai.errors import UserError

    with pytest.raises(UserError, match="val-split"):
        ScorecardSettings(run="r", split="val", val_split="val")
    with pytest.raises(UserError, match="--boxes and --masks"):
        ScorecardSettings(run="r", boxes="a.csv", masks="b.csv")


def test_known_negatives_have_empty_truth_and_boxes_their_pixels(boxed_run):
    from chestxai.explain.run import open_explained
    from chestxai.scorecard.collect import ground_truth, split_items

    trained = open_explained(boxed_run, "cpu")
    truth = ground_truth(trained.inputs().cache)
    items = split_items(trained, "test", truth)
    pos = [t for t in items.truth if t is not None and t.any()]
    neg = [t for t in items.truth if t is not None and not t.any()]
    assert len(pos) == 6 and all(t.sum() == 80 for t in pos)
    labels = np.asarray(trained.inputs().cache.labels)[:, 0]
    test_rows = trained.inputs().rows("test")
    unboxed = test_rows[6:]  # box_table boxes the first 6 test images; the rest count by their label
    assert len(neg) == int((labels[unboxed] == 0).sum())
    assert len(items.skipped) == int((labels[unboxed] == 1).sum())
    assert {s["reason"] for s in items.skipped} <= {"positive without boxes or mask"}


def test_chexlocalize_json_is_the_ground_truth_and_the_human_benchmark(tmp_path):
    """A CheXlocalize segmentation JSON made here: one test image with a mask, one with an empty one
    (a known negative), read through explain.chexlocalize (its "Airspace Opacity" is our "Lung
    Opacity") and scored like the cache's truth."""
    import json

    from chestxai.explain import chexlocalize as chex
    from chestxai.explain.run import open_explained
    from chestxai.testing import write_tiny_run

    plain_run, _ = write_tiny_run(tmp_path / "chex", "binary", 1, n=48, label_names=["Lung Opacity"])
    rows = open_explained(plain_run, "cpu").inputs().rows("test")
    first, second = (f"img{int(r):05d}" for r in rows[:2])
    mask = np.zeros((32, 32), bool)
    mask[8:20, 10:22] = True
    gt = {
        first: {"Airspace Opacity": chex.encode_mask(mask)},
        second: {"Airspace Opacity": chex.encode_mask(mask & False)},
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    card = build_scorecard(_settings(plain_run, tmp_path, gt_json=str(path), human_json=str(path)))
    assert card["ground_truth"] == "chexlocalize:gt.json" and card["human"] == str(path)
    assert card["items"]["n_positive"] == 1 and card["items"]["n_negative"] == 1
    assert card["methods"]["gradcam"]["layer3"]["localization"]["n_items"] == 2


def test_chexlocalize_flag_writes_their_pickles_and_our_otsu_masks(boxed_run, tmp_path):
    """--chexlocalize: the wiring of build_scorecard to the CheXlocalize writers (their formats are
    tested in tests/explain/test_chexlocalize.py): one folder per (method, layer) under DIR/chexlocalize,
    and the segmentation JSON holds exactly the Otsu masks of the maps at the images' size."""
    from chestxai.explain.chexlocalize import read_segmentations
    from chestxai.explain.coco_rle import decode_mask
    from chestxai.metrics.saliency_localization import otsu_mask
    from chestxai.rundir import ScorecardDir
    from chestxai.scorecard.maps import MapSet
    from chestxai.scorecard.run import _export_chexlocalize

    card = build_scorecard(_settings(boxed_run, tmp_path, chexlocalize=True))
    folder = ScorecardDir(tmp_path / "card").chexlocalize("gradcam", "layer3")
    assert card["methods"]["gradcam"]["layer3"]["chexlocalize"]["maps"] == str(folder / "maps")
    assert card["settings"]["chexlocalize"] is True

    rng = np.random.default_rng(0)
    truth = [np.zeros((40, 40), bool) for _ in range(3)]
    truth[0][5:20, 5:20] = True
    ms = MapSet("r", "gradcam", "layer3", "test", ["patient1_study1_view1_frontal", "patient2_study1_view1_frontal",
                "patient3_study1_view1_frontal"], ["Atelectasis"] * 3, ["p1", "p2", "p3"],
                rng.random((3, 8, 8)).astype(np.float32), np.array([0.9, 0.2, 0.5]), truth)  # fmt: skip
    out = _export_chexlocalize(ms, tmp_path / "x")
    assert out["n_maps"] == 3
    seg = read_segmentations(out["segmentations"])
    for i, image_id in enumerate(ms.image_ids):
        assert (decode_mask(seg[image_id]["Atelectasis"]) == otsu_mask(ms.full_map(i))).all()

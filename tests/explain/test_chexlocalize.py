"""CheXlocalize's files: RLE by hand, round trips, the pickles their scripts load, bad files."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pycocotools import mask as coco

from chestxai.errors import UserError
from chestxai.explain import chexlocalize as cx
from chestxai.explain import coco_rle
from chestxai.labels import same_finding, spelling_in

# our cache ids (the chexpert reader's form) of three CheXlocalize-style CXRs, odd sizes
IDS = {
    "valid/patient64541/study1/view1_frontal.jpg": (7, 5),
    "valid/patient64542/study1/view1_frontal.jpg": (9, 11),
    "test/patient64741/study2/view1_frontal.jpg": (6, 13),
}
LABELS = ["Lung Opacity", "Effusion", "Cardiomegaly"]  # a model's outputs (NIH spelling of effusion)


def _fixture_masks() -> dict[tuple[str, str], np.ndarray]:
    rng = np.random.default_rng(3)
    masks = {}
    for image_id, shape in IDS.items():
        for label in ("Lung Opacity", "Effusion"):
            masks[(image_id, label)] = rng.random(shape) > 0.6
    masks[("valid/patient64542/study1/view1_frontal.jpg", "Effusion")][:] = False  # a known negative
    return masks


def test_one_mapping_of_finding_names():
    assert same_finding("Airspace Opacity", "lung opacity")
    assert same_finding("Pleural Effusion", "Effusion") and same_finding("pleural effusion", "EFFUSION")
    assert not same_finding("Edema", "Effusion")
    assert spelling_in("Airspace Opacity", LABELS) == "Lung Opacity"
    assert spelling_in("Pleural Effusion", LABELS) == "Effusion"
    assert spelling_in("Edema", LABELS) is None
    assert spelling_in("Effusion", ["Pleural Effusion", "Effusion"]) == "Effusion"  # exact spelling wins
    assert (
        cx.task_name("Lung Opacity") == "Airspace Opacity" and cx.task_name("Effusion") == "Pleural Effusion"
    )
    assert cx.task_name("Pleural_Thickening") is None


def test_image_id_rule():
    assert (
        cx.chexlocalize_id("valid/patient64541/study1/view1_frontal.jpg")
        == "patient64541_study1_view1_frontal"
    )
    assert (
        cx.chexlocalize_id("CheXpert-v1.0/test/patient1/study2/view2_lateral.png")
        == "patient1_study2_view2_lateral"
    )
    assert cx.chexlocalize_id("patient64541_study1_view1_frontal") == "patient64541_study1_view1_frontal"
    assert cx.chexlocalize_id("images/00000001_000.png") == "00000001_000"


def test_rle_by_hand_is_column_major():
    # [[1, 1], [0, 0]] read column by column is 1 0 1 0: runs (zeros first) 0 1 1 1 1; COCO's
    # string writes runs from the 4th on as differences to the run two back (1-1=0, 1-1=0), each
    # below 16 as one char '0'+value: "01100". Row-major (the classic mistake) would give "022".
    rle = coco_rle.encode_mask(np.array([[1, 1], [0, 0]]))
    assert rle == {"size": [2, 2], "counts": "01100"}
    assert coco_rle.encode_mask(np.zeros((2, 2)))["counts"] == "4"
    assert coco_rle.rle_runs("01100") == [0, 1, 1, 1, 1] and coco_rle.rle_runs("4") == [4]


def test_rle_equals_pycocotools_and_round_trips_odd_sizes():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 5), (13, 6), (64, 33)]:
        m = rng.random(shape) > 0.5
        ours = coco_rle.encode_mask(m)
        ref = coco.encode(np.asfortranarray(m.astype(np.uint8)))
        assert ours["counts"] == ref["counts"].decode() and ours["size"] == list(shape)
        np.testing.assert_array_equal(cx.decode_mask(ours), m)
        np.testing.assert_array_equal(coco.decode(ref).astype(bool), m)
        runs = coco_rle.rle_runs(ours["counts"])  # our parser reads pycocotools' strings: runs fill h x w
        assert sum(runs) == m.size and sum(runs[1::2]) == m.sum()


def test_masks_to_json_to_truth_exact(tmp_path):
    masks = _fixture_masks()
    path = cx.write_segmentations(tmp_path / "seg.json", masks)
    data = json.loads(path.read_text())
    assert sorted(data) == sorted(cx.chexlocalize_id(i) for i in IDS)
    for tasks in data.values():
        assert list(tasks) == list(cx.TASKS)  # all ten, as their eval.py reads each
    assert cx.decode_mask(data["patient64541_study1_view1_frontal"]["Edema"]).sum() == 0  # zero-filled

    truth = cx.read_truth(path, image_ids=list(IDS), label_names=LABELS)
    for (image_id, label), m in masks.items():
        got = truth.lookup(image_id, label, IDS[image_id])
        assert got.dtype == bool
        np.testing.assert_array_equal(got, m)
    # Cardiomegaly: all-zero masks written for every CXR -> known negatives, never positives
    assert truth.lookup(next(iter(IDS)), "Edema", (7, 5)) is None  # not a model output: skipped
    assert "Edema" in truth.skipped
    positives = set(map(tuple, truth.pairs.to_numpy()))
    assert ("valid/patient64542/study1/view1_frontal.jpg", "Effusion") not in positives
    assert ("valid/patient64542/study1/view1_frontal.jpg", "Effusion") in set(
        map(tuple, truth.negatives.to_numpy())
    )
    assert len(positives) == 5 and truth.unmatched == []


def test_truth_resizes_nearest_and_reports_unmatched_ids(tmp_path):
    m = np.zeros((4, 4), bool)
    m[:2, 2:] = True
    path = cx.write_segmentations(
        tmp_path / "seg.json", {("patient9_study1_view1_frontal", "Cardiomegaly"): m}
    )
    truth = cx.read_truth(path, image_ids=["valid/patient8/study1/view1_frontal.jpg"])
    assert truth.unmatched == ["patient9_study1_view1_frontal"] and truth.pairs.empty
    truth = cx.read_truth(path)  # no ids: CXR ids kept, CheXpert spellings
    big = truth.lookup("patient9_study1_view1_frontal", "Cardiomegaly", (8, 8))
    np.testing.assert_array_equal(big, np.kron(m, np.ones((2, 2), bool)))
    # shrinking to a square cache size: area average, pixels at least half covered (the cache's rule)
    thin = np.zeros((8, 8), bool)
    thin[:, 3] = True  # a one-pixel line: nearest keeps or drops it by sampling phase
    thin[0:4, 4:8] = True
    path = cx.write_segmentations(
        tmp_path / "thin.json", {("patient9_study1_view1_frontal", "Support Devices"): thin}
    )
    small = cx.read_truth(path).lookup("patient9_study1_view1_frontal", "Support Devices", (4, 4))
    expect = np.zeros((4, 4), bool)
    expect[0:2, 2:4] = True  # 2x2 blocks: column 1 is half line (2 of 4 pixels) -> kept; upper right full
    expect[:, 1] = True
    np.testing.assert_array_equal(small, expect)


def test_annotation_polygons_rasterised_like_their_script(tmp_path):
    ann = {
        "patient1_study1_view1_frontal": {
            "img_size": [4, 5],
            "Airspace Opacity": [[[1, 1], [3, 1], [3, 2], [1, 2]]],
        }
    }
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    truth = cx.read_truth(tmp_path / "ann.json")
    expect = np.zeros((4, 5), bool)
    expect[1:3, 1:4] = True  # PIL fills the polygon and its outline: rows 1-2, columns 1-3
    np.testing.assert_array_equal(
        truth.lookup("patient1_study1_view1_frontal", "Lung Opacity", (4, 5)), expect
    )
    assert list(map(tuple, truth.pairs.to_numpy())) == [("patient1_study1_view1_frontal", "Lung Opacity")]
    assert len(truth.negatives) == 9  # the other nine pathologies: empty masks


class _TheirUnpickler(pickle.Unpickler):
    """What their utils.CPU_Unpickler does: storages via torch.load on the CPU."""

    def find_class(self, module, name):
        if module == "torch.storage" and name == "_load_from_bytes":
            return lambda b: torch.load(io.BytesIO(b), map_location="cpu", weights_only=False)
        return super().find_class(module, name)


def test_heatmap_pickles_hold_what_their_loader_reads(tmp_path):
    heat = np.arange(12, dtype=np.float64).reshape(3, 4) / 11.0
    image = (np.arange(7 * 9) % 256).astype(np.uint8).reshape(7, 9)
    records = [
        cx.HeatmapRecord("valid/patient64541/study1/view1_frontal.jpg", "Effusion", heat, image, 0.25, 1),
        cx.HeatmapRecord(
            "valid/patient64541/study1/view1_frontal.jpg", "Pleural_Thickening", heat, image, 0.5, 0
        ),
    ]
    paths = cx.write_heatmaps(tmp_path, records)
    assert [p.name for p in paths] == ["patient64541_study1_view1_frontal_Pleural Effusion_map.pkl"]
    # their parse_pkl_filename: task = name.split('_')[-2], img_id = the rest
    parts = paths[0].name.split("_")
    assert parts[-2] == "Pleural Effusion" and "_".join(parts[:-2]) == "patient64541_study1_view1_frontal"
    with paths[0].open("rb") as f:
        info = _TheirUnpickler(f).load()
    assert set(info) == {"map", "prob", "task", "gt", "cxr_img", "cxr_dims"}
    assert info["map"].dtype == torch.float32 and tuple(info["map"].shape) == (1, 1, 3, 4)
    np.testing.assert_allclose(info["map"][0, 0].numpy(), heat.astype(np.float32))
    assert info["prob"] == 0.25 and isinstance(info["prob"], float)
    assert info["task"] == "Pleural Effusion" and info["gt"] == 1
    assert info["cxr_dims"] == (9, 7)  # (w, h)
    assert info["cxr_img"].dtype == torch.float32 and tuple(info["cxr_img"].shape) == (3, 7, 9)
    np.testing.assert_allclose(info["cxr_img"][2].numpy(), image / 255.0, atol=1e-7)
    # their pkl_to_mask: bilinear resize to (cxr_dims[1], cxr_dims[0]) = the image's (h, w)
    resized = F.interpolate(info["map"], size=(info["cxr_dims"][1], info["cxr_dims"][0]), mode="bilinear")
    assert tuple(resized.shape[-2:]) == image.shape


def test_heatmap_pickle_from_the_image_size_alone():
    record = cx.HeatmapRecord(
        "patient2_study1_view1_frontal", "Cardiomegaly", np.ones((2, 2)), (5, 8), 0.5, 0
    )
    payload = cx.heatmap_payload(record)
    assert payload["cxr_dims"] == (8, 5) and tuple(payload["cxr_img"].shape) == (3, 5, 8)
    assert float(payload["cxr_img"].abs().sum()) == 0.0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not JSON"),
        ("[]", "non-empty object"),
        (
            '{"p1_study1_view1_frontal": {"Lung Opacity": {"size": [2, 2], "counts": "4"}}}',
            "unknown pathology",
        ),
        ('{"p1_study1_view1_frontal": {"Edema": {"size": [2], "counts": "4"}}}', "not [height, width]"),
        ('{"p1_study1_view1_frontal": {"Edema": {"size": [2, 2], "counts": [4]}}}', "not a COCO RLE"),
        (
            '{"p1_study1_view1_frontal": {"Edema": {"size": [2, 2], "counts": "4"},'
            ' "Cardiomegaly": {"size": [3, 2], "counts": "6"}}}',
            "different sizes",
        ),
        ('{"p1_study1_view1_frontal": {"img_size": [4, 5], "Edema": [[[1, 1], [2]]]}}', "polygon 0"),
        ('{"p1_study1_view1_frontal": {"Edema": {"size": [2, 3], "counts": "4"}}}', "not size 2 x 3"),
        ('{"p1_study1_view1_frontal": {"Edema": {"size": [2, 2], "counts": "4 "}}}', "not a COCO RLE string"),
        ('{"p1_study1_view1_frontal": {"Edema": {"size": [2, 2], "counts": "o"}}}', "ends inside a number"),
    ],
)
def test_bad_files_give_one_clear_line(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError) as err:
        cx.read_truth(path)
    message = str(err.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_missing_file_names_it(tmp_path):
    with pytest.raises(UserError, match="gt.json does not exist"):
        cx.read_truth(tmp_path / "gt.json")


def test_truth_feeds_build_items(tmp_path):
    from chestxai.explain.items import ImageSet, build_items

    m = np.zeros((16, 16), bool)
    m[4:12, 0:8] = True
    masks = {
        ("patient7_study1_view1_frontal", "Lung Opacity"): m,
        ("patient7_study1_view1_frontal", "Effusion"): np.zeros((16, 16), bool),
    }
    path = cx.write_segmentations(tmp_path / "gt.json", masks)
    cache_id = "valid/patient7/study1/view1_frontal.jpg"
    truth = cx.read_truth(path, image_ids=[cache_id], label_names=LABELS)
    images = ImageSet([cache_id], [np.zeros((8, 8), np.uint8)], "split:val")
    items, skipped = build_items(images, LABELS, mask_lookup=truth.lookup, mask_pairs=truth.pairs)
    assert [(i.image_id, i.finding, i.index) for i in items] == [(cache_id, "Lung Opacity", 0)]
    expect = np.zeros((8, 8), bool)
    expect[2:6, 0:4] = True
    np.testing.assert_array_equal(items[0].gt_mask, expect)
    assert skipped == []

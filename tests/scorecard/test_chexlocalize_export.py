"""A MapSet written for CheXlocalize's scripts: one pickle per CheXlocalize finding, our masks as JSON."""

from __future__ import annotations

import json

import numpy as np

from chestxai.explain import chexlocalize as cx
from chestxai.scorecard.chexlocalize_export import export_mapset
from chestxai.scorecard.maps import MapSet


def test_export_mapset(tmp_path):
    truth = np.zeros((6, 10), bool)
    truth[1:3, 2:5] = True
    ids = [
        "valid/patient1/study1/view1_frontal.jpg",
        "valid/patient1/study1/view1_frontal.jpg",
        "x/patient2/study1/view1_frontal.jpg",
    ]
    mapset = MapSet(
        run="r", method="gradcam", layer="layer2", split="test",
        image_ids=ids, findings=["Lung Opacity", "Fracture", "Cardiomegaly"], groups=["patient1", "patient1", "patient2"],
        maps=np.random.default_rng(0).random((3, 4, 4)).astype(np.float32),
        probabilities=np.array([0.9, 0.2, 0.1]), truth=[truth, None, np.zeros((6, 10), bool)],
    )  # fmt: skip
    out = export_mapset(mapset, tmp_path, masks={0: truth, 2: np.zeros((6, 10), bool)})
    names = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert out["n_maps"] == 2  # Fracture is not a CheXlocalize pathology
    assert names == [
        "patient1_study1_view1_frontal_Airspace Opacity_map.pkl",
        "patient2_study1_view1_frontal_Cardiomegaly_map.pkl",
    ]
    payload = cx.heatmap_payload(cx.HeatmapRecord(ids[0], "Lung Opacity", mapset.maps[0], (6, 10), 0.9, 1))
    assert payload["cxr_dims"] == (10, 6)
    data = json.loads((tmp_path / "segmentations.json").read_text())
    np.testing.assert_array_equal(
        cx.decode_mask(data["patient1_study1_view1_frontal"]["Airspace Opacity"]), truth
    )
    assert not cx.decode_mask(data["patient2_study1_view1_frontal"]["Cardiomegaly"]).any()

"""``chestxai explain RUN``: files the report reads, ground-truth modes, comparison, skipped inputs, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from explain_helpers import blob_dataset, write_tiny_cache
from PIL import Image

from chestxai.cli import main
from chestxai.explain import compare_methods, explain_run
from chestxai.explain.settings import ExplainSettings
from chestxai.models import create_model
from chestxai.models.checkpoint import make_checkpoint, read_checkpoint, save_atomic
from chestxai.rundir import RunDir
from chestxai.rundir.tables import write_splits

SIZE = 64
LABELS = ["Mass", "Nodule"]


def blob_boxes(boxes) -> list[dict]:
    rows = [
        {"image_id": f"img{i:05d}", "row": i, "label": "Mass", "x": b[0], "y": b[1], "w": b[2], "h": b[3]}
        for i, b in enumerate(boxes)
        if not np.isnan(b[0])
    ]
    test_pos = [r for r in rows if r["row"] >= 8]
    rows.append({**test_pos[0], "label": "Pneumothorax"})  # a finding the model does not have
    return rows


@pytest.fixture
def run_dir(tmp_path):
    """An (untrained) resnet18 multi-label run over a cache of blob images with 'Mass' boxes."""
    images, labels, boxes = blob_dataset(16, size=SIZE, seed=1)
    split = ["train"] * 8 + ["test"] * 8
    y = np.concatenate([labels, np.zeros_like(labels)], axis=1)
    rows = blob_boxes(boxes)
    cache = write_tiny_cache(
        tmp_path / "cache", images, y, LABELS, "multilabel", split=split, boxes=pd.DataFrame(rows)
    )
    torch.manual_seed(0)
    model = create_model("resnet18", num_labels=2, task="multilabel", input_size=SIZE)
    run = tmp_path / "run"
    preprocess = {"size": SIZE, "mean": 0.5, "std": 0.25}
    save_atomic(
        make_checkpoint(model, LABELS, preprocess, config={"data": {"cache_dir": str(cache)}}),
        run / "checkpoint.pt",
    )
    test_pos = [r["image_id"] for r in rows if r["row"] >= 8 and r["label"] == "Mass"]
    (run / "expected_test_ids.json").write_text(json.dumps(test_pos))
    return run


def test_explain_writes_what_the_report_reads(run_dir, capsys):
    assert main(["explain", str(run_dir), "--method", "gradcam", "--faithfulness-limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "pointing game" in out and "random" in out and "Pneumothorax" in out
    index = pd.read_csv(run_dir / "cams" / "index.csv", dtype=str)
    assert list(index.columns) == ["image_id", "label", "method", "split", "overlay"]
    assert set(index["split"]) == {"test"}
    # boxed findings of the test split only (the cache's split column; no splits.csv)
    assert sorted(index["image_id"]) == sorted(json.loads((run_dir / "expected_test_ids.json").read_text()))
    assert set(index["label"]) == {"Mass"} and set(index["method"]) == {"gradcam"}
    for rel in index["overlay"]:
        png = run_dir / rel  # relative to RUN
        assert png.is_file()
        with Image.open(png) as im:
            assert im.size == (SIZE, SIZE) and im.mode == "RGB"
    heat = np.load(run_dir / "cams" / "gradcam" / "heatmaps.npy")
    assert heat.dtype == np.float16 and heat.shape == (len(index), SIZE, SIZE)
    hm_index = pd.read_csv(run_dir / "cams" / "gradcam" / "heatmaps.csv", dtype={"image_id": str})
    assert list(hm_index["index"]) == list(range(len(index)))
    assert (run_dir / "cams" / "gradcam" / "boxes.csv").is_file()
    assert (run_dir / "cams" / "random" / "heatmaps.npy").is_file()  # the control's maps are kept too
    metrics = json.loads((run_dir / "explain_metrics.json").read_text())
    entry = metrics["methods"]["gradcam"]
    assert entry["layer"] == "backbone.layer2.1"  # at 64 px layer3 is 4x4; layer2 (8x8) is the deepest >= 7x7
    assert entry["localization"]["overall"]["n"] == len(index)
    assert entry["control"]["localization"]["overall"]["n"] == len(index)
    assert entry["faithfulness"]["n"] == 2
    overall = [
        r for r in metrics["localization_table"] if r["method"] == "gradcam" and r["finding"] == "(all)"
    ][0]
    for key in (
        "pointing_game",
        "pointing_game_random",
        "iobb",
        "iobb_random",
        "acc_iobb_0.5",
        "energy_random",
    ):
        assert key in overall
    assert any("Pneumothorax" in s["item"] and "no output" in s["reason"] for s in metrics["skipped"])


def test_runs_split_file_wins_and_reruns_replace_rows(run_dir):
    ids = [f"img{i:05d}" for i in range(16)]
    write_splits(
        RunDir(run_dir),
        pd.DataFrame({"image_id": ids, "row": range(16), "split": ["test"] * 4 + ["train"] * 12}),
    )
    settings = ExplainSettings(faithfulness_limit=0)
    result = explain_run(run_dir, "gradcam", finding="Nodule", settings=settings)
    assert (
        list(result.scores["image_id"]) == ids[:4]
    )  # splits.csv's test rows, every image for a named finding
    assert result.scores["hit"].isna().all()  # no Nodule boxes: explained, not scored
    explain_run(run_dir, "xgradcam", finding="Nodule", limit=2, settings=settings)
    explain_run(run_dir, "gradcam", finding="Nodule", limit=3, settings=settings)
    index = pd.read_csv(run_dir / "cams" / "index.csv", dtype=str)
    assert (index["method"] == "gradcam").sum() == 3 and (index["method"] == "xgradcam").sum() == 2
    metrics = json.loads((run_dir / "explain_metrics.json").read_text())
    assert {"gradcam", "xgradcam", "random"} <= set(metrics["methods"])
    assert metrics["methods"]["gradcam"]["localization"] is None


def test_compare_methods_ranks_on_the_same_items(run_dir):
    table = compare_methods(
        run_dir,
        methods=["gradcam", "cam", "pcam"],
        limit=3,
        settings=ExplainSettings(faithfulness_limit=1, steps=4),
    )
    ranked = table[table["rank"].notna()]
    assert set(ranked["method"]) == {"gradcam", "cam", "random"}
    assert (ranked["n"] == ranked["n"].iloc[0]).all()
    assert "not applicable" in table.loc[table["method"] == "pcam", "layer"].iloc[0]
    md = (run_dir / "explain_compare.md").read_text()
    assert "| rank | method |" in md and "pcam" in md
    assert (run_dir / "explain_compare.csv").is_file()
    index = pd.read_csv(run_dir / "cams" / "index.csv", dtype=str)
    assert set(index["method"]) == {"gradcam", "cam", "random"}


def test_image_files_undecodable_ones_are_skipped_with_a_reason(run_dir, tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(blob_dataset(1, size=80, seed=3)[0][0]).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    argv = [
        "explain",
        str(run_dir),
        "--images",
        str(good),
        str(bad),
        "--finding",
        "Mass",
        "--faithfulness-limit",
        "0",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "bad.png" in out
    metrics = json.loads((run_dir / "explain_metrics.json").read_text())
    assert [s["item"] for s in metrics["skipped"]] == [str(bad)]
    index = pd.read_csv(run_dir / "cams" / "index.csv", dtype=str)
    assert list(index["image_id"]) == ["good.png"]
    with Image.open(run_dir / index["overlay"][0]) as im:
        assert im.size == (80, 80)  # drawn on the original image, not the model input


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--finding", "Pneumothorax"], "Mass, Nodule"),
        (["--layer", "backbone.layer9"], "backbone.layer4"),
        (["--method", "gradcamm"], "gradcam++"),
        (["--split", "val"], "available splits"),
    ],
)
def test_bad_requests_are_one_line_errors(run_dir, capsys, extra, expected):
    assert main(["explain", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_files_with_masks_and_the_top_output_by_default(run_dir, tmp_path):
    images, _, boxes = blob_dataset(4, size=48, seed=5)
    i = int(np.flatnonzero(~np.isnan(boxes[:, 0]))[0])
    path = tmp_path / "x.png"
    Image.fromarray(images[i]).save(path)
    mask = np.zeros((24, 24), np.uint8)  # a mask at half the image size: resized to the image
    x, y, w, h = (int(v) // 2 for v in boxes[i])
    mask[y : y + h, x : x + w] = 255
    Image.fromarray(mask).save(tmp_path / "x_mask.png")
    table = pd.DataFrame(
        [
            {
                "image_id": "x.png",
                "label": "Mass",
                "kind": "png",
                "ref": "x_mask.png",
                "height": 24,
                "width": 24,
            }
        ]
    )
    table.to_csv(tmp_path / "masks.csv", index=False)
    settings = ExplainSettings(faithfulness_limit=0)
    scored = explain_run(run_dir, "gradcam", images=[path], masks=tmp_path / "masks.csv", settings=settings)
    assert list(scored.scores["finding"]) == ["Mass"] and scored.scores["hit"].notna().all()
    plain = explain_run(run_dir, "gradcam", images=[path], settings=settings)
    assert plain.scores["finding"].iloc[0] in LABELS  # the model's top output, unscored
    assert plain.scores["hit"].isna().all()


def test_a_re_prepared_cache_is_refused_not_misread(run_dir, tmp_path, capsys):
    """splits.csv names the rows training used; a cache re-prepared into the same folder (here: the
    same images in another order) must not be read through it, or test images become others."""
    cache = Path(read_checkpoint(run_dir / "checkpoint.pt")["config"]["data"]["cache_dir"])
    ids = [f"img{i:05d}" for i in range(16)]
    write_splits(
        RunDir(run_dir),
        pd.DataFrame({"image_id": ids, "row": range(16), "split": ["train"] * 8 + ["test"] * 8}),
    )
    assert explain_run(run_dir, "gradcam", settings=ExplainSettings(faithfulness_limit=0)).scores is not None
    images, labels, _ = blob_dataset(16, size=SIZE, seed=1)
    order = np.arange(16)[::-1]
    y = np.concatenate([labels, np.zeros_like(labels)], axis=1)[order]
    other = write_tiny_cache(tmp_path / "again", images[order], y, LABELS, "multilabel", split=["test"] * 16)
    renamed = pd.read_csv(other / "index.csv", dtype=str, keep_default_na=False)
    renamed["image_id"] = [ids[i] for i in order]  # the same images, rows in another order
    renamed.to_csv(other / "index.csv", index=False)
    shutil.rmtree(cache)
    shutil.copytree(other, cache)
    assert main(["explain", str(run_dir), "--faithfulness-limit", "0"]) == 2
    err = capsys.readouterr().err
    assert "splits.csv does not match cache" in err and "re-prepared" in err and "Traceback" not in err


def test_each_split_keeps_its_own_entry(run_dir):
    settings = ExplainSettings(faithfulness_limit=0)
    explain_run(run_dir, "gradcam", settings=settings)
    test_metrics = json.loads((run_dir / "explain_metrics.json").read_text())["methods"]["gradcam"]
    explain_run(run_dir, "gradcam", split="train", finding="Nodule", limit=2, settings=settings)
    metrics = json.loads((run_dir / "explain_metrics.json").read_text())
    assert metrics["methods"]["gradcam"] == test_metrics  # not replaced by the train split's run
    assert metrics["methods"]["gradcam@train"]["split"] == "train"
    assert {r["split"] for r in metrics["localization_table"]} == {"test"}  # train: Nodule, unscored
    index = pd.read_csv(run_dir / "cams" / "index.csv", dtype=str)
    assert set(index["split"]) == {"test", "train"} and (index["split"] == "train").sum() == 2
    assert all((run_dir / rel).is_file() for rel in index["overlay"])


def test_sanity_border_energy_and_warnings_are_written(run_dir, capsys):
    argv = ["explain", str(run_dir), "--sanity", "--sanity-limit", "3", "--faithfulness-limit", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "sanity check" in out and "border energy" in out and "on logits" in out
    metrics = json.loads((run_dir / "explain_metrics.json").read_text())
    entry = metrics["methods"]["gradcam"]
    sanity = entry["sanity"]
    assert sanity["n_images"] == 3 and sanity["passed"] in (True, False, None)
    assert (sanity["passed"] is None) == sanity["verdict"].startswith("no verdict")  # empty untrained maps
    assert entry["sanity"]["layer"] == entry["layer"] and entry["grid"] == [8, 8]
    assert [r["randomised"] for r in entry["sanity"]["cascading"]][0] == "head"
    assert entry["faithfulness"]["score"] == "logit"
    a = entry["anatomy"]
    assert a["border_px"] == 4 and a["map_size"] == [SIZE, SIZE] and 0 <= a["border_energy"] <= 1
    assert entry["control"]["anatomy"]["border_energy"] is not None
    assert isinstance(entry["warnings"], list) and metrics["warnings"]["gradcam"] == entry["warnings"]
    assert metrics["methods"]["random"]["warnings"] == []  # the control is not judged against itself
    assert {"pointing_game", "iobb", "energy", "deletion_auc", "rule"} <= set(entry["vs_control"])
    # the untrained model's maps do not beat the control: said in the warnings, per metric
    unbeaten = [k for k, v in entry["vs_control"].items() if isinstance(v, dict) and v["beats"] is False]
    assert all(any(f"on {k}" in w for w in entry["warnings"]) for k in unbeaten)
    assert [r["method"] for r in metrics["sanity_table"]] == ["gradcam"]
    assert [r["method"] for r in metrics["anatomy_table"]] == ["gradcam", "random"]
    scores = pd.read_csv(run_dir / "cams" / "gradcam" / "scores.csv")
    shown = scores["border_energy"].dropna()  # NaN where the map is empty (constant)
    assert shown.between(0, 1).all() and scores["border_energy"].isna().sum() == a["n_empty"]


def test_border_warning_on_maps_that_sit_on_the_border(run_dir, monkeypatch):
    """A method whose maps are hot only on the image's edge gets the border warning in the json."""
    from pytorch_grad_cam.base_cam import BaseCAM

    from chestxai.explain.methods import METHODS, Method

    class EdgeBand(BaseCAM):
        def __init__(self, model, target_layers, reshape_transform=None):
            super().__init__(model, target_layers, reshape_transform, uses_gradients=False)

        def forward(self, input_tensor, targets=None, eigen_smooth=False):
            out = np.zeros((len(input_tensor), *input_tensor.shape[-2:]), np.float32)
            out[:, :, :2] = 1.0  # a band along the left edge
            return out

    class EdgeBandMethod(Method):
        def build(self, model, target_layers, reshape_transform=None, rng=None):
            return EdgeBand(model, target_layers, reshape_transform)

    METHODS.names()
    monkeypatch.setitem(METHODS._items, "leftband", EdgeBandMethod)
    explain_run(
        run_dir, "leftband", limit=2, settings=ExplainSettings(faithfulness_limit=0, align=False)
    )  # drawn in image space: nothing to align
    entry = json.loads((run_dir / "explain_metrics.json").read_text())["methods"]["leftband"]
    assert entry["anatomy"]["border_energy"] == pytest.approx(1.0)
    assert any("within 4 px of the image border" in w for w in entry["warnings"])


def test_outside_lung_energy_with_a_lung_mask(run_dir, tmp_path):
    images, _, _ = blob_dataset(1, size=SIZE, seed=5)
    Image.fromarray(images[0]).save(tmp_path / "x.png")
    lungs = np.zeros((SIZE, SIZE), np.uint8)
    lungs[:, : SIZE // 2] = 255  # the left half "is lung"
    Image.fromarray(lungs).save(tmp_path / "x_lungs.png")
    row = {"image_id": "x.png", "kind": "png", "ref": "x_lungs.png", "height": SIZE, "width": SIZE}
    pd.DataFrame([{**row, "label": "Lungs"}]).to_csv(tmp_path / "masks.csv", index=False)
    res = explain_run(  # the random map: an untrained model's Grad-CAM may be all zero
        run_dir,
        "random",
        images=[tmp_path / "x.png"],
        masks=tmp_path / "masks.csv",
        finding="Mass",
        settings=ExplainSettings(faithfulness_limit=0),
    )
    heat = np.load(run_dir / "cams" / "random@files" / "heatmaps.npy").astype(np.float64)[0]
    expected = heat[:, SIZE // 2 :].sum() / heat.sum()  # the heatmap is at the image's size here
    assert res.metrics["anatomy"]["n_lung_masks"] == 1
    assert res.metrics["anatomy"]["outside_lungs"] == pytest.approx(expected, abs=2e-3)


def test_compare_layers_ranks_layers_and_says_when_none_is_recommended(run_dir, tmp_path, capsys):
    from chestxai.explain.layer_compare import compare_layers

    settings = ExplainSettings(faithfulness_limit=1, steps=4)
    table = compare_layers(run_dir, "gradcam", ["layer2", "backbone.layer3"], limit=3, settings=settings)
    assert list(table["rank"]) == [1, 2]
    assert set(table["layer"]) == {"backbone.layer2", "backbone.layer3"}
    assert set(table["grid"]) == {"8x8", "4x4"}
    assert {"pointing_game", "pointing_game_random", "road_random", "beats_random"} <= set(table)
    assert table["recommended"].sum() <= 1
    ranked = table.sort_values(["pointing_game", "iobb", "energy"], ascending=False, kind="stable")
    assert list(ranked["layer"]) == list(table["layer"])
    metrics = json.loads((run_dir / "explain_metrics.json").read_text())
    summary = metrics["layer_comparison"]["gradcam"]
    assert summary["ranked_by"] == ["pointing_game", "iobb", "energy"] and summary["n_items"] >= 3
    assert "Recommendation:" in (run_dir / "explain_layers.md").read_text()
    assert (run_dir / "explain_layers.csv").is_file()
    # no ground truth: ranked by faithfulness, nothing recommended, and the reason says why
    Image.fromarray(blob_dataset(1, size=SIZE, seed=3)[0][0]).save(tmp_path / "y.png")
    argv = ["explain", str(run_dir), "--compare-layers", "--layers", "layer2,layer3", "--images"]
    assert main([*argv, str(tmp_path / "y.png"), "--faithfulness-limit", "1", "--no-overlays"]) == 0
    assert "no layer recommended" in capsys.readouterr().out
    summary = json.loads((run_dir / "explain_metrics.json").read_text())["layer_comparison"]["gradcam@files"]
    assert summary["recommended"] is None and "no ground truth" in summary["reason"]
    assert "gradcam" in json.loads((run_dir / "explain_metrics.json").read_text())["layer_comparison"]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--layers", "layer2"], "--layers goes with --compare-layers"),
        (["--compare-layers", "--compare-methods"], "pass one of them"),
        (["--compare-layers", "--method", "cam"], "final feature map"),
    ],
)
def test_layer_flags_are_checked(run_dir, capsys, argv, expected):
    assert main(["explain", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err

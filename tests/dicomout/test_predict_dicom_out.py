"""``chestxai predict RUN --images ... --dicom-out DIR``: an SR + Parametric Map per good DICOM with
the CSV's numbers, refused DICOMs skipped whole with their reason, non-DICOM inputs predicted as
usual without DICOM objects, sources untouched, and the flag mistakes refused."""

from __future__ import annotations

import hashlib

import cv2
import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest
from dicom_helpers import make_dicom
from serve_helpers import LABELS, write_png

from chestxai.cli import main
from chestxai.dicomout import codes
from chestxai.serve.inputs import load_files
from chestxai.serve.models import load_served
from chestxai.serve.predict_files import PredictOptions, predict_files


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    good = [make_dicom(folder / "a.dcm", seed=1), make_dicom(folder / "b.dcm", rows=64, cols=96, seed=2)]
    mr = make_dicom(folder / "mr.dcm", Modality="MR", seed=3)
    png = write_png(folder / "c.png", np.random.default_rng(4).integers(0, 255, (50, 40), dtype=np.uint8))
    return good, mr, png


def test_predict_dicom_out_writes_objects_with_the_csv_numbers(run_dir, inputs, tmp_path):
    good, mr, png = inputs
    before = {p: sha(p) for p in [*good, mr]}
    out, dicom_dir = tmp_path / "o.csv", tmp_path / "dicom"
    argv = ["predict", str(run_dir), "--images", *map(str, [*good, mr, png]), "--out", str(out),
            "--dicom-out", str(dicom_dir), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert {p: sha(p) for p in [*good, mr]} == before, "a source file was modified"
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame["path"]) == [str(good[0]), str(good[1]), str(png)]  # the MR is skipped whole
    skipped = pd.read_csv(out.with_name("o.skipped.csv"))
    assert list(skipped["path"]) == [str(mr)] and "modality 'MR'" in skipped["reason"][0]
    assert frame["dicom_sr"].tolist()[2] == "" and frame["explained_by"].tolist()[2] != ""  # PNG: no objects
    assert sorted(p.name for p in dicom_dir.iterdir()) == [
        "000000_a.pm.dcm", "000000_a.sr.dcm", "000001_b.pm.dcm", "000001_b.sr.dcm",
    ]  # fmt: skip
    for k, source_path in enumerate(good):
        row = frame.iloc[k]
        source = pydicom.dcmread(source_path)
        sr = hd.sr.srread(row["dicom_sr"])
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        for group, label in zip(sr.content.get_image_measurement_groups(), LABELS, strict=True):
            assert group.finding_type.value == codes.finding_code(label)[1]
            measured = {m.name.value: m.value for m in group.get_measurements()}
            assert measured[codes.PROBABILITY[1]] == pytest.approx(row[f"p_{label}"], rel=1e-12)
            (evaluation,) = group.get_qualitative_evaluations()
            present = evaluation.value.value == codes.PRESENT[1]
            assert present == bool(row[f"decision_{label}"])
        pm = pydicom.dcmread(row["dicom_pm"])
        assert pm.StudyInstanceUID == source.StudyInstanceUID
        heat = np.load(row["heatmap_npy"])  # the CSV path's heatmap, stretched to the source grid
        expected = np.clip(
            cv2.resize(heat, (source.Columns, source.Rows), interpolation=cv2.INTER_LINEAR), 0, 1
        )
        np.testing.assert_array_equal(pm.pixel_array, expected)


def test_predict_files_result_lists_the_objects_and_forced_modality(run_dir, inputs, tmp_path):
    good, mr, _ = inputs
    scorer = load_served(run_dir)
    options = PredictOptions(progress=False, dicom_out=tmp_path / "d", dicom_force_modality=True)
    result = predict_files(scorer, [good[0], mr], tmp_path / "p.csv", options)
    assert [d["source"] for d in result["dicom"]] == [str(good[0]), str(mr)]
    assert all(d["pr"] is None for d in result["dicom"])
    assert result["n_skipped"] == 0
    assert load_files([mr], scorer.resize_to).skipped == []  # an MR decodes; only the DICOM rule refused it


def test_dicom_out_flag_mistakes_are_refused(run_dir, inputs, tmp_path, capsys):
    good, _, _ = inputs
    base = ["predict", str(run_dir), "--images", str(good[0]), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "x.csv"), "--force-modality"]) == 2
    assert "only apply with --dicom-out" in capsys.readouterr().err
    dicom_dir = tmp_path / "d"
    assert main([*base, "--out", str(tmp_path / "y.csv"), "--dicom-out", str(dicom_dir)]) == 0
    assert main([*base, "--out", str(tmp_path / "z.csv"), "--dicom-out", str(dicom_dir)]) == 2
    assert "already holds .dcm files" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "z.csv"), "--dicom-out", str(dicom_dir), "--force",
                 "--presentation-state"]) == 0  # fmt: skip
    assert len(list(dicom_dir.glob("*.pr.dcm"))) == 1


def test_a_failed_write_is_listed_and_does_not_stop_the_batch(run_dir, inputs, tmp_path, monkeypatch):
    import chestxai.dicomout

    good, _, _ = inputs
    real = chestxai.dicomout.write_results

    def flaky(source, result, out_dir, **kw):
        if kw["source_path"] == good[0]:
            raise RuntimeError("disk on fire")
        return real(source, result, out_dir, **kw)

    monkeypatch.setattr(chestxai.dicomout, "write_results", flaky)
    options = PredictOptions(progress=False, dicom_out=tmp_path / "d")
    result = predict_files(load_served(run_dir), good, tmp_path / "p.csv", options)
    assert result["n_images"] == 2  # both predicted
    assert [d["source"] for d in result["dicom"]] == [str(good[1])]
    assert result["skipped"] == [
        {"path": str(good[0]), "reason": "DICOM output failed: RuntimeError: disk on fire"}
    ]


def test_an_onnx_scorer_is_refused_before_any_file_is_read(inputs, tmp_path):
    class Onnx:  # what predict_files knows of an OnnxModel: no explain()
        label_names, task, resize_to = LABELS, "multilabel", 48

    options = PredictOptions(progress=False, dicom_out=tmp_path / "d")
    with pytest.raises(ValueError, match="needs gradients an ONNX model does not have"):
        predict_files(Onnx(), inputs[0], tmp_path / "p.csv", options)
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "d").exists()

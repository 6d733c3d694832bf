"""``chestxai synth evaluate``: synth_metrics.json (with and without a classifier), the label-consistency
rules, the FID/KID extractors, the gallery and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chestxai.cli import main
from chestxai.report.synth import build_synth_report
from chestxai.rundir import RunDir, SynthRunDir
from chestxai.rundir.thresholds import write_thresholds
from chestxai.synth.consistency import ClassifierJudge
from chestxai.synth.features import make_extractor
from chestxai.synth.realism import GALLERY_KINDS, evaluate_synth

from .tiny_synth import one_thread, tiny_classifier, tiny_synth_run  # noqa: F401 (one_thread: autouse)

KEYS = {"two_sample", "fid", "kid", "label_consistency", "cycle_ssim", "extractor", "gallery", "null_reasons"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_synth_run(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    clf = tiny_classifier(tmp_path_factory.mktemp("clf"))
    write_thresholds(RunDir(clf), {"Pneumonia": 0.4}, policy="youden", chosen_on="val", epoch=3,
                     checkpoint=None, evaluated_split="test")  # fmt: skip
    return clf


def test_without_a_classifier_what_needs_one_is_null_with_a_reason(run):
    m = evaluate_synth(run, n=8, gallery=1, c2st_epochs=2, progress=False)
    assert set(m) >= KEYS
    for d in ("a2b", "b2a"):
        ts = m["two_sample"][d]
        assert {"accuracy", "ci", "p_value", "n_test"} <= set(ts) and ts["n_test"] == 8
        assert 0 <= ts["ci"][0] <= ts["accuracy"] <= ts["ci"][1] <= 1
        assert ts["real_vs_real"]["n_test"] == 4  # the same test on two halves of the real images
        assert m["cycle_ssim"][d]["n"] == 8 and -1 <= m["cycle_ssim"][d]["mean"] <= 1
    assert m["fid"] is None and m["kid"] is None and m["label_consistency"] is None and m["extractor"] is None
    assert (
        "--classifier" in m["null_reasons"]["fid"] and "classifier" in m["null_reasons"]["label_consistency"]
    )
    rd = SynthRunDir(run)
    on_disk = json.loads(rd.metrics.read_text())
    assert on_disk["two_sample"] == m["two_sample"]
    assert len(m["gallery"]) == 2  # one per direction
    for e in m["gallery"]:
        assert set(e["files"]) == {"input", "translated", "reconstructed", "difference"}
        assert all((rd.root / p).is_file() for p in e["files"].values())
    page = build_synth_report(run).read_text()
    assert "two-sample accuracy" in page and "not computed" in page and "No classifier given" in page


def test_with_a_classifier_every_metric_is_filled(run, classifier):
    m = evaluate_synth(run, classifier=classifier, n=8, gallery=1, c2st_epochs=2, progress=False)
    assert m["extractor"]["name"] == "classifier" and m["extractor"]["comparable_with_published"] is False
    assert m["classifier"]["threshold_source"] == "thresholds.json"
    for d in ("a2b", "b2a"):
        assert np.isfinite(m["fid"][d]["value"]) and m["fid"][d]["n_real"] == 8
        assert m["kid"][d]["subset_size"] == 4 and m["kid"][d]["std"] is not None  # half of 8
        lc = m["label_consistency"][d]
        assert 0 <= lc["share"] <= 1 and lc["n"] == 8 and "0.4" in lc["rule"]
    assert m["label_consistency"]["a2b"]["rule"] == "p(Pneumonia) >= 0.4"
    assert m["label_consistency"]["b2a"]["rule"] == "p(Pneumonia) < 0.4"
    assert "label_consistency" not in m["null_reasons"]
    for e in m["gallery"]:
        assert set(e["files"]) == set(GALLERY_KINDS)
    assert m["gallery_settings"]["label"] == "Pneumonia"
    page = build_synth_report(run).read_text()
    assert "not comparable with published Inception" in page and "Grad-CAM" in page
    assert page.count("data:image/png;base64,") >= 10  # self-contained


def test_the_cli_writes_metrics_and_report(run, classifier, capsys):
    args = ["synth", "evaluate", str(run), "--classifier", str(classifier), "--n", "6", "--gallery", "1",
            "--c2st-epochs", "1", "--direction", "a2b", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "a2b: two-sample accuracy" in out and "label consistency" in out and "report.html" in out
    m = json.loads(SynthRunDir(run).metrics.read_text())
    assert m["directions"] == ["a2b"] and list(m["two_sample"]) == ["a2b"]


def test_bad_input_is_a_clear_error(run, tmp_path):
    with pytest.raises(ValueError, match="trained for a2b and b2a only"):
        evaluate_synth(run, directions=("a2c",), progress=False)
    with pytest.raises(ValueError, match="--n must be at least 4"):
        evaluate_synth(run, n=2, progress=False)
    with pytest.raises(ValueError, match="--extractor 'pixels': unknown"):
        evaluate_synth(run, extractor="pixels", n=4, c2st_epochs=1, gallery=0, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        evaluate_synth(run, classifier=tmp_path, n=4, progress=False)
    with pytest.raises(FileNotFoundError, match="synthesis run"):
        evaluate_synth(tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="inception_v3_google"):
        make_extractor("inception-torchvision:/nonexistent.pth", None)


def test_foreign_files_are_not_replaced(run, tmp_path):
    rd = SynthRunDir(run)
    evaluate_synth(run, n=4, gallery=0, c2st_epochs=1, progress=False)
    rd.report.write_text("<html>my notes</html>")
    with pytest.raises(FileExistsError, match="--force"):
        build_synth_report(run)
    build_synth_report(run, force=True)
    saved = rd.metrics.read_text()
    rd.metrics.write_text('{"mine": 1}')
    with pytest.raises(FileExistsError, match="--force"):
        evaluate_synth(run, n=4, gallery=0, c2st_epochs=1, progress=False)
    assert rd.metrics.read_text() == '{"mine": 1}'
    rd.metrics.write_text(saved)


def _judge(names, task, thresholds):
    return ClassifierJudge(run=None, model=None, model_name="?", preprocess={}, label_names=names, task=task,
                           thresholds=thresholds, threshold_source="test", temperature=None)  # fmt: skip


def test_label_consistency_rules():
    j = _judge(["Effusion", "Pneumothorax"], "multilabel", {"Effusion": 0.3, "Pneumothorax": 0.6})
    p = np.array([[0.1, 0.7], [0.4, 0.2], [0.1, 0.1]])
    assert j.rule("Pneumothorax")[1](p).tolist() == [True, False, False]
    assert j.rule("not:Pneumothorax")[1](p).tolist() == [False, True, True]
    assert j.rule("No Finding")[1](p).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="no output for 'Mass'"):
        j.rule("Mass")
    m = _judge(["NORMAL", "PNEUMONIA"], "multiclass", {"NORMAL": 0.5, "PNEUMONIA": 0.5})
    q = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert m.rule("pneumonia")[1](q).tolist() == [False, True]
    assert m.rule("No Finding")[1](q).tolist() == [True, False]
    assert m.rule("not:PNEUMONIA")[1](q).tolist() == [True, False]


def test_inception_extractor_from_a_local_file(tmp_path):
    """The optional torchvision Inception path: a local state dict (random weights here: the
    architecture and plumbing are what is tested, not ImageNet features)."""
    from torchvision.models import inception_v3

    path = tmp_path / "inception.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    ex, reason = make_extractor(f"inception-torchvision:{path}", None)
    assert reason is None and ex.info["name"] == "inception-torchvision" and ex.info["num_features"] == 2048
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 1, 32, 32), dtype=np.uint8))
    feats = ex.module(images)  # what torchmetrics calls (FID itself is tested on the classifier features)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a torchvision Inception-v3"):
        make_extractor(f"inception-torchvision:{tmp_path / 'bad.pth'}", None)

"""``chestxai synth generate``: PNGs + a manifest the csv reader loads as it is; seeded; clear errors;
never replaces a file it did not write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from chestxai.cli import main
from chestxai.data.prepare import prepare
from chestxai.data.readers.csv_manifest import read as read_csv_manifest
from chestxai.rundir import GeneratedDir
from chestxai.synth.checkpoint import load_synth
from chestxai.synth.generate import generate, target_label_values

from .tiny_synth import one_thread, tiny_synth_run  # noqa: F401 (one_thread: autouse)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_synth_run(tmp_path_factory.mktemp("gen"))


def test_generate_writes_images_and_a_manifest_the_csv_reader_loads(run, tmp_path, capsys):
    out = tmp_path / "gen"
    g = generate(run, "a2b", out, 5, split="test", seed=0, progress=False)
    gen = GeneratedDir(out)
    frame = pd.read_csv(gen.manifest, dtype=str)
    assert g.n == 5 and len(frame) == 5
    assert list(frame.columns[:3]) == ["path", "label", "Pneumonia"]
    assert set(frame["label"]) == {"Pneumonia"} and set(frame["Pneumonia"]) == {"1"}
    assert set(frame["direction"]) == {"a2b"} and set(frame["seed"]) == {"0"}
    assert set(frame["source_split"]) == {"test"}
    synth = load_synth(run)
    test_a = set(synth.splits.query("domain == 'a' and split == 'test'")["image_id"])
    assert set(frame["source_image"]) <= test_a  # only source-domain images of the asked split
    for rel in frame["path"]:
        with Image.open(out / rel) as im:
            assert im.size == (32, 32) and im.mode == "L"

    table = read_csv_manifest(out)  # no options at all
    assert table.label_names == ["Pneumonia"] and len(table) == 5
    assert (table.labels == 1).all()
    cache = prepare("csv", out, size=32, out=tmp_path / "cache", workers=0, progress=False)
    assert (cache / "meta.json").is_file()
    assert main(["data", "summary", "--source", "csv", "--root", str(out)]) == 0
    assert "Pneumonia" in capsys.readouterr().out
    # label_cols= picks the 0/1 target column instead (binary, as the source dataset was)
    assert read_csv_manifest(out, label_cols="Pneumonia").task == "multilabel"


def test_the_choice_of_images_is_seeded(run, tmp_path):
    ids = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        generate(run, "b2a", tmp_path / name, 4, seed=seed, progress=False)
        ids.append(sorted(pd.read_csv(GeneratedDir(tmp_path / name).manifest)["source_image"]))
    assert ids[0] == ids[1] and ids[0] != ids[2]


def test_bad_input_is_a_clear_error(run, tmp_path):
    n_test = len(load_synth(run).rows("a", "test"))
    with pytest.raises(ValueError, match=rf"--n 500 is more than the {n_test} images of domain a"):
        generate(run, "a2b", tmp_path / "x", 500, progress=False)
    with pytest.raises(ValueError, match="trained for a2b .* and b2a"):
        generate(run, "a2c", tmp_path / "x", 2, progress=False)
    with pytest.raises(ValueError, match="--n must be at least 1"):
        generate(run, "a2b", tmp_path / "x", 0, progress=False)
    with pytest.raises(ValueError, match="no images"):
        generate(run, "a2b", tmp_path / "x", 2, split="holdout", progress=False)
    assert not (tmp_path / "x").exists()  # nothing written on a refused call


def test_a_used_folder_is_refused_and_foreign_files_are_never_replaced(run, tmp_path):
    out = tmp_path / "gen"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(run, "a2b", out, 2, progress=False)
    generate(run, "a2b", out, 2, force=True, progress=False)  # into a used folder: allowed with --force
    generate(run, "a2b", out, 2, force=True, progress=False)  # and again: its own files are replaced
    assert (out / "notes.txt").read_text() == "mine"
    gen = GeneratedDir(out)
    # a PNG at a path generate would write that no manifest of generate lists is someone else's
    other = tmp_path / "other"
    generate(run, "a2b", other, 2, progress=False)
    rel = pd.read_csv(GeneratedDir(other).manifest)["path"].iloc[0]
    GeneratedDir(other).manifest.unlink()
    with pytest.raises(FileExistsError, match="never replaced"):
        generate(run, "a2b", other, 2, force=True, progress=False)
    assert (other / rel).is_file()
    # a manifest.csv that generate did not write
    gen.manifest.write_text("path,label\nx.png,1\n")
    with pytest.raises(FileExistsError, match="not written by"):
        generate(run, "a2b", out, 2, force=True, progress=False)
    assert gen.manifest.read_text() == "path,label\nx.png,1\n"


def test_cli_errors_are_one_line(run, tmp_path, capsys):
    code = main(
        ["synth", "generate", str(run), "--direction", "a2b", "--n", "999", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--n 999 is more than" in err
    code = main(["synth", "generate", str(run), "--direction", "b2a", "--n", "2", "--out", str(tmp_path / "o"),
                 "--no-progress", "--device", "cpu"])  # fmt: skip
    assert code == 0 and "wrote 2 images (Pneumonia -> not:Pneumonia)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text,names,task,expected",
    [
        ("Pneumonia", ["Pneumonia"], "binary", {"Pneumonia": 1.0}),
        ("not:Pneumonia", ["Pneumonia"], "binary", {"Pneumonia": 0.0}),
        ("No Finding", ["Effusion", "Pneumothorax"], "multilabel", {"Effusion": 0.0, "Pneumothorax": 0.0}),
        ("Pneumothorax", ["Effusion", "Pneumothorax"], "multilabel", {"Pneumothorax": 1.0}),
        ("PNEUMONIA", ["NORMAL", "PNEUMONIA"], "multiclass", {"NORMAL": 0.0, "PNEUMONIA": 1.0}),
        ("No Finding", ["NORMAL", "PNEUMONIA"], "multiclass", {"NORMAL": 1.0, "PNEUMONIA": 0.0}),
        ("No Finding", ["No Finding", "Mass"], "multiclass", {"No Finding": 1.0, "Mass": 0.0}),
    ],
)
def test_target_label_columns(text, names, task, expected):
    assert target_label_values(text, names, task) == expected


def test_generated_pixels_are_the_generator_output(run, tmp_path):
    generate(run, "a2b", tmp_path / "g", 3, progress=False)
    frame = pd.read_csv(GeneratedDir(tmp_path / "g").manifest, dtype=str)
    synth = load_synth(run)
    from chestxai.data.cache import PreparedCache

    cache = PreparedCache(synth.cache_dir)
    rows = [int(np.flatnonzero(cache.frame["image_id"] == i)[0]) for i in frame["source_image"]]
    expected = synth.translate(np.asarray(cache.images[rows]), "a2b")
    written = np.stack([np.asarray(Image.open(tmp_path / "g" / p)) for p in frame["path"]])
    assert np.array_equal(written, expected)


# --- issue 20 #9: a generated set loads as the binary finding, with its source patients ----------
@pytest.mark.parametrize(("direction", "value"), [("b2a", 0.0), ("a2b", 1.0)])
def test_generated_manifest_loads_as_the_binary_finding_with_source_patients(run, tmp_path, direction, value):
    out = tmp_path / direction
    generate(run, direction, out, 4, progress=False)
    manifest = pd.read_csv(GeneratedDir(out).manifest, dtype=str)
    table = read_csv_manifest(out)  # no options, as `data summary` / `prepare` read it
    assert table.task == "binary" and table.label_names == ["Pneumonia"]  # not a class "not:Pneumonia"
    assert (table.labels[:, 0] == value).all()
    np.testing.assert_array_equal(table.labels[:, 0], manifest["Pneumonia"].astype(float))
    assert table.frame["patient_id"].tolist() == manifest["source_patient"].tolist()  # no leak across splits


def test_a_domain_that_fixes_one_label_is_written_as_name_or_not_name():
    from chestxai.synth.generate import manifest_label

    assert manifest_label("No Finding", {"Pneumonia": 0.0}) == "not:Pneumonia"  # PneumoniaMNIST normal
    assert manifest_label("Pneumonia", {"Pneumonia": 1.0}) == "Pneumonia"
    assert manifest_label("No Finding", {"Effusion": 0.0, "Mass": 0.0}) == "No Finding"

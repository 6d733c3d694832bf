"""Site probe: two synthetic sites that differ only by a border band are found (AUROC high, a
warning); two sites drawn from one distribution are not (~0.5); folds never split a patient."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_runs import write_tiny_cache, write_tiny_run

from chestxai.cli import main
from chestxai.evaluation.site_probe import WARN_AUROC, probe_auroc

SIZE = 32


def _site(tmp_path, name, n, seed, band):
    """Noise images like the tiny run's; ``band``: a bright 3-pixel frame (a scanner's border)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(n, SIZE, SIZE), dtype=np.uint8)
    if band:
        images[:, :3, :] = images[:, -3:, :] = images[:, :, :3] = images[:, :, -3:] = 250
    labels = (rng.random((n, 1)) < 0.5).astype(np.float32)
    return write_tiny_cache(tmp_path / name, images, labels, ["Pneumonia"], "binary",
                            patient_id=[f"{name}{i // 2}" for i in range(n)])  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    # 80 images: 40 in the test split (rows 2, 3 of every 4) are the internal site
    return write_tiny_run(root, "binary", 1, n=80, size=SIZE, label_names=["Pneumonia"])[0], root


@pytest.mark.parametrize(("band", "found"), [(True, True), (False, False)])
def test_probe_finds_a_border_band_and_not_a_twin_site(run, band, found):
    run_dir, root = run
    other = _site(root, f"site-band{band}", 40, seed=7, band=band)
    out = root / f"out-band{band}"
    args = [
        "evaluate",
        str(run_dir),
        "--data",
        str(other),
        "--out",
        str(out),
        "--site-probe",
        "--n-boot",
        "100",
    ]
    assert main([*args, "--no-figures"]) == 0
    probe = json.loads((out / "metrics.json").read_text())["site_probe"]
    auc = probe["roc_auc"]["value"]
    assert probe["probe"] == "dataset" and probe["n"] == 80 and probe["folds"] == 5
    if found:
        assert auc >= WARN_AUROC and probe["warning"] and "encodes the dataset" in probe["warning"]
    else:
        assert abs(auc - 0.5) < 0.2 and probe["warning"] is None


def test_folds_group_patients():
    """Each patient's images share a unique feature vector and a label: a probe that let a patient
    into both the fitted and the scored fold would recognise them (AUROC ~1); grouped, it is ~0.5."""
    rng = np.random.default_rng(0)
    n_patients, per = 60, 4
    ident = rng.normal(size=(n_patients, 120))  # more dimensions than patients: separable
    label = rng.integers(0, 2, n_patients)
    x = np.repeat(ident, per, axis=0) + rng.normal(0, 0.01, (n_patients * per, 120))
    y = np.repeat(label, per)
    groups = np.repeat(np.arange(n_patients), per)
    grouped = probe_auroc(x, y, groups, n_boot=50)["roc_auc"]["value"]
    leaky = probe_auroc(x, y, np.arange(len(y)), n_boot=50)["roc_auc"]["value"]  # one group per image
    assert leaky > 0.9 and abs(grouped - 0.5) < 0.2


def test_probe_needs_two_patients_per_class():
    with pytest.raises(ValueError, match="at least 2 patients in each class"):
        probe_auroc(np.zeros((4, 2)), np.array([0, 0, 0, 1]), np.array(["a", "b", "c", "d"]))


def test_view_probe_on_the_runs_own_split(tmp_path):
    run_dir, cache = write_tiny_run(tmp_path, "binary", 1, n=48, size=SIZE, label_names=["Pneumonia"])
    # write_tiny_cache records every view as PA: one view, so a view probe is refused with the counts
    assert main(["evaluate", str(run_dir), "--probe", "view", "--n-boot", "10", "--no-figures"]) == 2


def test_view_probe_finds_a_view_that_differs_by_a_band(run):
    """Within one cache: AP images carry the band, PA do not; unknown views are dropped, a third
    view is listed as dropped."""
    from pathlib import Path
    from types import SimpleNamespace

    import pandas as pd

    from chestxai.evaluation.site_probe import view_probe
    from chestxai.models.trained_run import TrainedRun

    rng = np.random.default_rng(5)
    n = 50
    images = rng.integers(0, 255, size=(n, SIZE, SIZE), dtype=np.uint8)
    views = np.array(["PA", "AP"] * 22 + ["LL", "LL", "", None, "nan", "PA"], dtype=object)
    images[views == "AP", :3, :] = 250
    frame = pd.DataFrame({"view": views, "patient_id": [f"p{i // 2}" for i in range(n)]})
    cache = SimpleNamespace(frame=frame, images=images, path=Path("fake"))
    trained = TrainedRun.open(run[0], "cpu")
    probe = view_probe(trained, cache, np.arange(n), n_boot=50)
    assert probe["classes"] == ["PA", "AP"] and probe["n"] == 45
    assert probe["other_views_dropped"] == {"LL": 2} and probe["unknown_view_dropped"] == 3
    assert probe["roc_auc"]["value"] >= WARN_AUROC and "encodes the view" in probe["warning"]


def test_a_dataset_probe_against_the_runs_own_cache_is_refused(run):
    run_dir, root = run
    assert (
        main(["evaluate", str(run_dir), "--data", str(root / "cache"), "--site-probe", "--no-figures"]) == 2
    )

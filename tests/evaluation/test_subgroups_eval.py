"""``evaluate --by``: the ``subgroups`` entry of metrics.json, joined back to predictions.csv by image id."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score, roc_auc_score
from tiny_runs import write_tiny_run

from chestxai.cli import main
from chestxai.data.cache import PreparedCache
from chestxai.evaluation import evaluate_run
from chestxai.rundir import RunDir, prob_column, target_column

N = 96


def _meta(n: int) -> dict[str, list]:
    rng = np.random.default_rng(1)
    sex = list(rng.choice(["F", "M"], n))
    sex[::7] = [""] * len(sex[::7])  # unknown: never a group
    age = [float(a) for a in rng.integers(5, 95, n)]
    age[::11] = [np.nan] * len(age[::11])
    return {"sex": sex, "age": age, "view": list(rng.choice(["PA", "AP", "AP Supine"], n))}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("sub")
    patients = [f"p{i // 2}" for i in range(N)]
    run, cache = write_tiny_run(root, "binary", 1, n=N, patient_id=patients, meta=_meta(N))
    by = {"by": ["sex", "age", "view"], "age_edges": (40.0, 60.0), "min_count": 3}
    result = evaluate_run(run, n_boot=100, seed=0, figures=False, subgroups=by)
    return run, cache, result


def test_subgroups_in_metrics_json_equal_a_recomputation_from_predictions(evaluated):
    run, cache, result = evaluated
    written = json.loads(RunDir(run).metrics.read_text())
    assert written["subgroups"] == result["subgroups"]
    s = written["subgroups"]
    assert s["by"] == ["sex", "age", "view"] and s["age_bins"]["names"] == ["0-40", "40-60", "60+"]
    pred = pd.read_csv(RunDir(run).predictions, dtype={"image_id": str})
    pred = pred[pred["split"] == "test"].merge(
        PreparedCache(cache).frame, on="image_id"
    )  # joined by image id
    (name,) = result["label_names"]
    th = result["thresholds"]["values"][name]
    y, p = pred[target_column(name)].to_numpy(), pred[prob_column(name)].to_numpy()
    for g in ("F", "M"):
        rows = (pred["sex"] == g).to_numpy()
        e = s["attributes"]["sex"]["findings"][name]["groups"][g]
        assert e["n"] == rows.sum() and e["n_pos"] == y[rows].sum()
        if e["status"] == "scored":
            assert e["roc_auc"]["value"] == pytest.approx(roc_auc_score(y[rows], p[rows]))
            assert e["sensitivity"]["value"] == pytest.approx(recall_score(y[rows], p[rows] >= th))
    assert sorted(s["attributes"]["sex"]["groups"]) == ["F", "M"]  # "" is missing, not a group
    assert any(e["status"] == "scored" for e in s["attributes"]["sex"]["findings"][name]["groups"].values())
    assert s["attributes"]["sex"]["n_missing"] == int((pred["sex"] == "").sum())
    assert sorted(s["attributes"]["view"]["groups"]) == ["AP", "PA"]  # "AP Supine" is AP
    assert set(s["attributes"]["age"]["groups"]) <= {"0-40", "40-60", "60+"}


def test_an_intersection_groups_by_both_columns_and_leaves_out_rows_missing_either(evaluated, tmp_path):
    """``--by sex:view``: one group per (sex, view) pair seen, an image unknown in either part is
    missing from the intersection, each group's counts those of a direct recomputation."""
    run, cache, _ = evaluated
    sub = {"by": ["sex", "sex:view"], "min_count": 2}
    result = evaluate_run(run, n_boot=20, figures=False, out=tmp_path / "o", subgroups=sub)
    s = result["subgroups"]
    assert s["by"] == ["sex", "sex:view"]
    pred = pd.read_csv(RunDir(tmp_path / "o").predictions, dtype={"image_id": str})
    pred = pred[pred["split"] == "test"].merge(PreparedCache(cache).frame, on="image_id")
    (name,) = result["label_names"]
    inter = s["attributes"]["sex:view"]
    assert sorted(inter["groups"]) == ["F & AP", "F & PA", "M & AP", "M & PA"]
    view = pred["view"].replace({"AP Supine": "AP"})
    for g, e in inter["findings"][name]["groups"].items():
        sex, v = g.split(" & ")
        rows = ((pred["sex"] == sex) & (view == v)).to_numpy()
        assert e["n"] == rows.sum() and e["n_pos"] == pred[target_column(name)].to_numpy()[rows].sum()
    assert inter["n_missing"] == s["attributes"]["sex"]["n_missing"]  # view is never missing here


def test_by_a_column_the_cache_lacks_names_the_columns_it_has(evaluated, tmp_path):
    run, _, _ = evaluated
    with pytest.raises(ValueError, match=r"--by hospital.*\['sex', 'age', 'view', 'site'\]"):
        evaluate_run(run, n_boot=10, figures=False, out=tmp_path / "o", subgroups={"by": ["hospital"]})
    with pytest.raises(ValueError, match=r"--by hospital"):  # a part of an intersection too
        evaluate_run(run, n_boot=10, figures=False, out=tmp_path / "o", subgroups={"by": ["sex:hospital"]})
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--by", "image_id"], "identifier"),
        (["--by", "sex", "--age-bins", "60,40"], "strictly increasing"),
        (["--by", "sex", "--age-bins", "forty"], "ages in years"),
        (["--by", "sex:sex"], "two different columns"),
        (["--by", "sex:"], "two different columns"),
        (["--by", "sex:patient_id"], "identifier"),
    ],
)
def test_bad_subgroup_flags_are_usage_errors(evaluated, flags, message, capsys):
    run, _, _ = evaluated
    with pytest.raises(SystemExit):
        main(["evaluate", str(run), *flags])
    assert message in capsys.readouterr().err


def test_cli_prints_the_table_and_the_report_has_the_section(evaluated, tmp_path, capsys):
    run, cache, _ = evaluated
    out = tmp_path / "ext"
    code = main(
        ["evaluate", str(run), "--data", str(cache), "--out", str(out), "--by", "sex,view", "--min-positives", "3",
         "--n-boot", "20", "--no-figures", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "subgroups (scored with >= 3 positives" in printed and "sex: F" in printed
    from chestxai.report.build import build_report

    html = build_report(run, out=tmp_path / "report.html").read_text()
    assert "Subgroups" in html and "Underdiagnosis by sex" in html


def test_help_states_the_kernel_defaults(capsys):
    from chestxai.metrics.subgroups import AGE_EDGES, MIN_COUNT

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"default {','.join(f'{e:g}' for e in AGE_EDGES)}:" in text and f"(default {MIN_COUNT})" in text

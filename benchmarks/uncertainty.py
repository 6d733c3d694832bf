"""Uncertainty benchmark: does referring the most uncertain cases raise the ROC-AUC of the rest,
and what does MC dropout cost?

Usage (each part is one bounded job; run them under the shared lock)::

    .venv/bin/python benchmarks/uncertainty.py train-pmnist --out /tmp/unc-bench
    .venv/bin/python benchmarks/uncertainty.py analyse --task pmnist --out /tmp/unc-bench
    .venv/bin/python benchmarks/uncertainty.py train-covid --out /tmp/unc-bench
    .venv/bin/python benchmarks/uncertainty.py analyse --task covid --out /tmp/unc-bench
    .venv/bin/python benchmarks/uncertainty.py cost [--sizes 28 224] [--batch 32] [--passes 30]
    .venv/bin/python benchmarks/uncertainty.py conformal --run RUN [--alphas 0.1 0.05] [--out DIR]

``train-*``: three short trainings (seeds 0, 1, 2) of ResNet-18 with head dropout 0.3 on the
task (PneumoniaMNIST with the ``pneumoniamnist_resnet18_dropout`` recipe; the COVID-19 image
collection as COVID-19 vs other findings, 64 px, patient-grouped split), each evaluated (operating
thresholds chosen on val). ``analyse``: ``chestxai uncertainty`` with MC dropout (30 passes) and
TTA (30 views) on seed 0, and the 3-member ensemble; prints the retained ROC-AUC at 0/10/20/30%
referred with 95% patient-bootstrap CIs for every ranking beside random and confidence referral.
``--dropout P`` inserts head dropout at inference for MC dropout when the runs were trained without
(labelled in the outputs); every table has the ``softmax`` baseline row (Bernhardt et al. 2022).
``conformal``: ``chestxai uncertainty RUN --conformal`` at each alpha (run's own val -> test), the
test coverage / FNR / FPR / NPV / PPV with CIs, set sizes and share referred, val beside test;
written to ``DIR/conformal-<run>.json`` (the run's ``uncertainty/conformal/`` is the last alpha's).
``cost``: MC-dropout images/s at ``passes`` passes divided by (single-forward images/s / passes),
the cost of ``passes`` plain forwards; > 1 when the backbone runs once per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from chestxai.paths import shared_data_root

SEEDS = (0, 1, 2)
FRACTIONS = (0.0, 0.1, 0.2, 0.3)
COVID_RECIPE = """\
name: covid_collection_resnet18_dropout
data:
  source: covid-collection
  root: {root}
  options: {{positive: COVID-19}}
  size: 64
  task: binary
  val_fraction: 0.15
  test_fraction: 0.3  # 227 images of 138 patients: a larger test split for usable CIs
model:
  name: resnet18
  dropout: 0.3
train:
  epochs: 15
  batch_size: 32
  lr: 0.001
  weight_decay: 0.0001
  schedule: cosine
  augment: true
  seed: 0
"""


def _env(out: Path) -> dict:
    npz = shared_data_root() / "pneumoniamnist"
    return dict(os.environ, CHESTXAI_DOWNLOADS=str(npz), CHESTXAI_CACHE=str(out / "cache"))


def _cli(*args: str, out: Path) -> None:
    cmd = [sys.executable, "-m", "chestxai", *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=_env(out))


def train(task: str, out: Path, epochs: int | None) -> None:
    if task == "pmnist":
        recipe = "pneumoniamnist_resnet18_dropout"
    else:
        recipe = str(out / "covid_recipe.yaml")
        out.mkdir(parents=True, exist_ok=True)
        Path(recipe).write_text(COVID_RECIPE.format(root=shared_data_root() / "covid-collection"))
    for seed in SEEDS:
        run = out / f"{task}-s{seed}"
        if (run / "thresholds.json").exists():
            continue
        extra = ["--epochs", str(epochs)] if epochs else []
        t0 = time.perf_counter()
        _cli(
            "train",
            "--config",
            recipe,
            "--run-dir",
            str(run),
            "--seed",
            str(seed),
            "--no-progress",
            *extra,
            out=out,
        )
        print(f"trained {run} in {time.perf_counter() - t0:.0f}s", flush=True)
        _cli("evaluate", str(run), "--no-figures", "--n-boot", "200", "--no-progress", out=out)


def analyse(
    task: str, out: Path, passes: int, n_boot: int, methods: list[str], dropout: float | None = None
) -> dict:
    from chestxai.uncertainty.stage import uncertainty_run

    os.environ.update(_env(out))
    first = out / f"{task}-s0"
    others = [out / f"{task}-s{s}" for s in SEEDS[1:]]
    path = out / f"results-{task}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    plan = {
        "mc-dropout": {"passes": passes, "dropout": dropout},
        "tta": {"passes": passes},
        "ensemble": {"members": others},
    }
    for method in methods:
        kwargs = plan[method]
        t0 = time.perf_counter()
        s = uncertainty_run(first, method=method, n_boot=n_boot, force=True, **kwargs)
        results[method] = {
            "seconds": time.perf_counter() - t0,
            "n_images": s["n_images"],
            "n_patients": s["n_patients"],
            "referral": {
                name: [r for r in rows if r["fraction"] in FRACTIONS] for name, rows in s["referral"].items()
            },
            "aurc": s["aurc"],
            "augrc": s["augrc"],
            "ece": {k: s["calibration"][k]["ece"] for k in ("mean", "deterministic")},
            "target_referral": s["target_referral"],
        }
        path.write_text(json.dumps(results, indent=2))  # after each method: a timeout keeps what is done
    for method, r in results.items():
        print(
            f"\n{task} {method} ({r['n_images']} test images, {r['n_patients']} patients, {r['seconds']:.0f}s)"
        )
        print("| ranking | " + " | ".join(f"{f:.0%} referred" for f in FRACTIONS) + " | AURC |")
        for name, rows in r["referral"].items():
            cells = [
                f"{row['roc_auc']:.3f} [{row['ci']['roc_auc'][0]:.3f}, {row['ci']['roc_auc'][1]:.3f}]"
                for row in rows
            ]
            print(f"| {name} | " + " | ".join(cells) + f" | {r['aurc'][name]:.4f} |")
    return results


def _rate(r: dict | None) -> str:
    if not r or r.get("value") is None:
        return "n/a"
    return f"{r['value']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"


def conformal(run: Path, alphas: list[float], out: Path, n_boot: int) -> dict:
    """Calibrate on the run's val rows at each alpha, measure on test (module doc)."""
    from chestxai.uncertainty.conformal_stage import conformal_run

    results = {}
    for alpha in alphas:
        t0 = time.perf_counter()
        s = conformal_run(run, alpha, n_boot=n_boot, force=True)
        c = s["conformal"]
        results[str(alpha)] = {"seconds": time.perf_counter() - t0, "conformal": c, "referral": s["referral"]}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"conformal-{run.name}.json").write_text(json.dumps(results, indent=2))
    print(
        "| alpha | method | coverage (test) | coverage (val) | per-class coverage (test) | FNR | FPR | NPV | PPV "
        "| mean set size | referred |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for alpha, r in results.items():
        c, t = r["conformal"], r["conformal"]["test"]
        tri = t.get("triage", {})
        head = c.get("coverage") or c.get("fnr")
        per_class = "; ".join(_rate(x) for x in t.get("coverage_by_class", []))
        val = (c["val"].get("coverage") or c["val"].get("fnr"))["value"]
        print(
            f"| {alpha} | {c['method']} | {_rate(head)} | {val:.3f} | {per_class} | {_rate(tri.get('fnr'))} "
            f"| {_rate(tri.get('fpr'))} | {_rate(tri.get('npv'))} | {_rate(tri.get('ppv'))} "
            f"| {c['mean_set_size']:.2f} | {_rate(tri.get('share_referred'))} |"
        )
    return results


def cost(sizes: list[int], batch: int, passes: int, repeats: int) -> None:
    from chestxai.models import create_model
    from chestxai.uncertainty import predict_with_uncertainty

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {batch}, {passes} passes")
    for size in sizes:
        model = create_model("resnet18", 1, "binary", dropout=0.3, input_size=size).eval()
        x = torch.randn(batch, 1, size, size)

        def single(model=model, x=x) -> None:
            with torch.inference_mode():
                model(x)

        def mc(model=model, x=x) -> None:
            predict_with_uncertainty(model, x, "mc-dropout", passes, seed=0)  # + deterministic + measures

        rates = {}
        for name, fn in (("single", single), ("mc", mc)):
            fn()  # warm-up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            rates[name] = batch / best
        limit = rates["single"] / passes
        print(
            f"{size} px: single forward {rates['single']:.0f} images/s, MC dropout x{passes} "
            f"{rates['mc']:.0f} images/s, limit (single/{passes}) {limit:.1f} -> ratio {rates['mc'] / limit:.2f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["train-pmnist", "train-covid", "analyse", "cost", "conformal"])
    p.add_argument("--out", type=Path, default=Path("/tmp/unc-bench"))
    p.add_argument("--task", choices=["pmnist", "covid"], default="pmnist")
    p.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    p.add_argument("--passes", type=int, default=30)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--methods", nargs="+", default=["mc-dropout", "tta", "ensemble"])
    p.add_argument("--sizes", type=int, nargs="+", default=[28, 224])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--dropout", type=float, default=None, help="analyse: head dropout inserted for MC dropout"
    )
    p.add_argument("--run", type=Path, default=None, help="conformal: the evaluated run to calibrate")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.05])
    a = p.parse_args()
    if a.part == "train-pmnist":
        train("pmnist", a.out, a.epochs)
    elif a.part == "train-covid":
        train("covid", a.out, a.epochs)
    elif a.part == "analyse":
        analyse(a.task, a.out, a.passes, a.n_boot, a.methods, a.dropout)
    elif a.part == "conformal":
        if a.run is None:
            p.error("conformal needs --run RUN (an evaluated run with val rows in predictions.csv)")
        conformal(a.run, a.alphas, a.out, a.n_boot)
    else:
        cost(a.sizes, a.batch, a.passes, a.repeats)


if __name__ == "__main__":
    main()

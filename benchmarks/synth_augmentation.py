"""Does CycleGAN synthesis help a classifier? Real data only vs real + synthetic minority images.

Usage (run it under the shared lock; it resumes: finished runs are kept)::

    flock /tmp/chestxai-heavy.lock .venv/bin/python benchmarks/synth_augmentation.py \\
        --synth runs/pm64 --out /tmp/synth-aug [--seeds 0 1 2] [--epochs 10] [--arms real weighted synthetic]
    .venv/bin/python benchmarks/synth_augmentation.py --synth RUN --out /tmp/synth-aug-smoke --smoke

The task is the synthesis run's own: its two domains as a binary label (``not:Pneumonia`` vs
``Pneumonia`` -> label ``Pneumonia``), its images and its train/val/test split (``RUN/splits.csv``),
so the test split is images neither the CycleGAN nor any classifier trained on. Arms, each trained
with every seed (same recipe, model, batch size, epochs and *steps per epoch*: the budget is the
same number of optimizer steps and images seen, whatever the training set's size):

``real``       the real training images;
``weighted``   the same, minority oversampled (``train.sampler=weighted``): the cheap baseline any
               synthetic augmentation must beat to be worth its cost;
``synthetic``  real + synthetic minority images: majority-class *training* images translated into
               the minority domain with ``chestxai synth generate --split train`` (default: as many as
               balance the classes), added to the training split only (val and test stay real).

Each run is evaluated with ``chestxai evaluate`` (threshold on val; ROC-AUC with a 95% patient
bootstrap CI on test). Per seed, DeLong's test compares each arm with ``real`` on the same test
images. Verdict: an arm *helps* when its AUC is higher in every seed and DeLong p < 0.05 in at least
half of them, *hurts* in the mirror case; anything else is "no clear effect", said plainly.
Results go to ``OUT/results.json`` (after every run, so a timeout keeps what is done).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chestxai.cli import main as cli

ARMS = ("real", "weighted", "synthetic")


def task_from_domains(domains: dict[str, str]) -> tuple[str, str]:
    """(label name, positive domain key) of the binary task the two domains define."""
    from chestxai.synth.domains import parse_domain

    for key in ("b", "a"):
        spec = parse_domain(domains[key])
        if spec.label is not None and spec.present:
            return spec.label, key
    raise ValueError(
        f"domains {domains}: neither names a label present; the benchmark needs e.g. LABEL vs not:LABEL"
    )


def _cache_from_arrays(out: Path, images, labels, label, split, patients, ids, size: int) -> Path:
    from chestxai.data.prepare import prepare
    from chestxai.data.table import ImageTable

    frame = pd.DataFrame({"image_id": ids, "path": "", "patient_id": patients, "view": "", "split": split})
    table = ImageTable(
        source="synth-augmentation", frame=frame, label_names=[label], task="binary",
        labels=np.asarray(labels, np.float32).reshape(-1, 1), arrays=np.asarray(images, np.uint8),
    )  # fmt: skip
    return prepare(table, size=size, out=out, workers=0, progress=False)


def build_data(synth_run: Path, out: Path, n_synthetic: int | None, max_train: int | None, seed: int) -> dict:
    """The real cache, the synthetic images (via ``synth generate``) and the augmented cache."""
    from chestxai.data.cache import PreparedCache
    from chestxai.rundir import GeneratedDir
    from chestxai.synth.checkpoint import load_synth

    synth = load_synth(synth_run)
    if synth.cache_dir_b is not None:
        raise ValueError(
            "the domains come from two datasets: a classifier would learn the dataset, not the label"
        )
    label, pos = task_from_domains(synth.domains)
    cache = PreparedCache(synth.cache_dir)
    sp = synth.splits.copy()
    if max_train:  # smoke tests: a seeded subsample of the training images, the same for every arm
        train = sp[sp["split"] == "train"]
        keep = train.sample(n=min(max_train, len(train)), random_state=seed).index
        sp = pd.concat([sp[sp["split"] != "train"], sp.loc[keep]]).sort_values("row")
    rows = sp["row"].to_numpy(np.int64)
    y = (sp["domain"] == pos).to_numpy(np.float32)
    frame = cache.frame
    ids = frame["image_id"].iloc[rows].astype(str).tolist()
    patients = frame["patient_id"].iloc[rows].astype(str).tolist()
    real = _cache_from_arrays(out / "cache-real", cache.images[rows], y, label, sp["split"].tolist(), patients,
                              ids, synth.size)  # fmt: skip
    counts = {k: int(((sp["split"] == "train") & (sp["domain"] == k)).sum()) for k in ("a", "b")}
    minority = min(counts, key=counts.get)
    majority = "b" if minority == "a" else "a"
    direction = f"{majority}2{minority}"
    n_syn = n_synthetic if n_synthetic is not None else counts[majority] - counts[minority]
    n_syn = min(n_syn, len(synth.rows(majority, "train")))
    gen = GeneratedDir(out / "synthetic")
    if not gen.manifest.is_file():
        code = cli(["synth", "generate", str(synth_run), "--direction", direction, "--split", "train", "--n",
                    str(n_syn), "--out", str(gen.root), "--seed", str(seed), "--no-progress", "--device", "cpu"])  # fmt: skip
        if code:
            raise SystemExit(f"synth generate failed ({code})")
    man = pd.read_csv(gen.manifest, dtype=str)
    from PIL import Image

    syn = np.stack([np.asarray(Image.open(gen.root / p)) for p in man["path"]])
    y_syn = np.full(len(man), 1.0 if minority == pos else 0.0, np.float32)
    aug = _cache_from_arrays(
        out / "cache-synthetic",
        np.concatenate([np.asarray(cache.images[rows]), syn]),
        np.concatenate([y, y_syn]),
        label,
        sp["split"].tolist() + ["train"] * len(man),
        patients + man["source_patient"].tolist(),
        ids + [f"synthetic-{i}" for i in man["source_image"]],
        synth.size,
    )
    return {
        "label": label, "positive_domain": synth.domains[pos], "minority": synth.domains[minority],
        "direction": direction, "n_synthetic": int(len(man)), "train_counts": {synth.domains[k]: v for k, v in counts.items()},
        "n_train_real": int((sp["split"] == "train").sum()), "n_test": int((sp["split"] == "test").sum()),
        "caches": {"real": str(real), "weighted": str(real), "synthetic": str(aug)}, "size": synth.size,
    }  # fmt: skip


def train_and_evaluate(arm: str, seed: int, data: dict, out: Path, a: argparse.Namespace) -> dict:
    from chestxai.rundir import RunDir

    run = RunDir(out / f"{arm}-s{seed}")
    if not run.metrics.is_file():
        steps = a.steps_per_epoch or math.ceil(data["n_train_real"] / a.batch_size)
        sets = [f"data.cache_dir={data['caches'][arm]}", f"train.max_steps_per_epoch={steps}",
                f"train.threads={a.threads}", "data.task=binary", f"model.name={a.model}",
                f"train.sampler={'weighted' if arm == 'weighted' else 'shuffle'}"]  # fmt: skip
        args = ["train", "--config", a.recipe, "--run-dir", str(run.root), "--size", str(data["size"]),
                "--seed", str(seed), "--epochs", str(a.epochs), "--batch-size", str(a.batch_size),
                "--device", a.device, "--no-progress"]  # fmt: skip
        t0 = time.perf_counter()
        for s in sets:
            args += ["--set", s]
        if cli(args):
            raise SystemExit(f"training {run.root} failed")
        seconds = time.perf_counter() - t0
        if cli(["evaluate", str(run.root), "--no-figures", "--n-boot", str(a.n_boot), "--no-progress"]):
            raise SystemExit(f"evaluating {run.root} failed")
        (run.root / "bench_seconds.txt").write_text(f"{seconds:.1f}\n")
    from chestxai.rundir.predictions import read_predictions

    m = json.loads(run.metrics.read_text())
    auc = m["metrics"]["per_class"][data["label"]]["roc_auc"]
    pred = read_predictions(run.predictions).select("test")
    return {
        "auc": auc["value"], "ci": auc["ci"], "n_test": m["n_images"],
        "image_id": pred.frame["image_id"].tolist(), "p": pred.probs[:, 0].tolist(), "y": pred.targets[:, 0].tolist(),
        "train_seconds": float((run.root / "bench_seconds.txt").read_text()),
    }  # fmt: skip


def compare(results: dict, arms: list[str], seeds: list[int]) -> dict:
    """Per seed DeLong of each arm against ``real``; the verdict rule of the module docstring."""
    from chestxai.metrics.delong import delong_test

    out = {}
    for arm in arms:
        if arm == "real":
            continue
        rows = []
        for s in seeds:
            base, other = results["real"][str(s)], results[arm][str(s)]
            assert base["image_id"] == other["image_id"], "arms were tested on different images"
            d = delong_test(np.array(base["y"]), np.array(other["p"]), np.array(base["p"]))
            rows.append({"seed": s, "auc_real": d.auc_b, "auc_arm": d.auc_a, "diff": d.diff, "p": d.p_value})
        diffs = np.array([r["diff"] for r in rows])
        sig = np.array([r["p"] < 0.05 for r in rows])
        if (diffs > 0).all() and sig.mean() >= 0.5:
            verdict = "helps"
        elif (diffs < 0).all() and sig.mean() >= 0.5:
            verdict = "hurts"
        else:
            verdict = "no clear effect"
        out[arm] = {"per_seed": rows, "mean_diff": float(diffs.mean()), "verdict": verdict}
    return out


def report(results: dict, comparison: dict, data: dict, arms: list[str], seeds: list[int]) -> None:
    print(f"\ntask: {data['label']} (positive = {data['positive_domain']}), train {data['train_counts']}, "
          f"{data['n_synthetic']} synthetic {data['minority']} images ({data['direction']}), test {data['n_test']} real")  # fmt: skip
    print("| arm | " + " | ".join(f"seed {s} ROC-AUC [95% CI]" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for arm in arms:
        cells = [f"{results[arm][str(s)]['auc']:.3f} [{results[arm][str(s)]['ci'][0]:.3f}, "
                 f"{results[arm][str(s)]['ci'][1]:.3f}]" for s in seeds]  # fmt: skip
        mean = np.mean([results[arm][str(s)]["auc"] for s in seeds])
        print(f"| {arm} | " + " | ".join(cells) + f" | {mean:.3f} |")
    for arm, c in comparison.items():
        ps = ", ".join(f"seed {r['seed']}: {r['diff']:+.3f} (p={r['p']:.3g})" for r in c["per_seed"])
        print(f"\n{arm} vs real, DeLong per seed: {ps}; mean difference {c['mean_diff']:+.3f}")
        if c["verdict"] == "helps":
            print(f"VERDICT: {arm} helps (higher AUC in every seed, significant in at least half).")
        elif c["verdict"] == "hurts":
            print(f"VERDICT: {arm} HURTS (lower AUC in every seed, significant in at least half).")
        else:
            print(
                f"VERDICT: {arm} does NOT help here: no consistent, significant AUC difference from real data only."
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", type=Path, required=True, help="a synthesis run (chestxai synth train)")
    p.add_argument("--out", type=Path, default=Path("/tmp/synth-aug"))
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--recipe", default="pneumoniamnist_resnet18", help="classifier recipe (data keys overridden)"
    )
    p.add_argument("--model", default="resnet18")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--steps-per-epoch", type=int, default=0, help="0 = one pass over the real training images"
    )
    p.add_argument("--n-synthetic", type=int, default=None, help="default: as many as balance the classes")
    p.add_argument("--max-train", type=int, default=None, help="subsample the real training images (smoke)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--smoke", action="store_true", help="tiny settings: 2 seeds, 1 epoch, 3 steps, 40 synthetic"
    )
    a = p.parse_args()
    if a.smoke:
        a.seeds, a.epochs, a.steps_per_epoch, a.n_boot = a.seeds[:2], 1, 3, 50
        a.n_synthetic, a.max_train, a.batch_size = a.n_synthetic or 40, a.max_train or 200, 16
    if "real" not in a.arms:
        a.arms = ["real", *a.arms]
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = build_data(a.synth, a.out, a.n_synthetic, a.max_train, seed=0)
    path = a.out / "results.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    results = saved.get("runs", {})
    for seed in a.seeds:
        for arm in a.arms:
            results.setdefault(arm, {})[str(seed)] = train_and_evaluate(arm, seed, data, a.out, a)
            path.write_text(json.dumps({"data": data, "runs": results}, indent=1))
            print(f"{arm} seed {seed}: test ROC-AUC {results[arm][str(seed)]['auc']:.3f}", flush=True)
    comparison = compare(results, a.arms, a.seeds)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    path.write_text(json.dumps({"data": data, "settings": settings, "runs": results, "comparison": comparison,
                                "seconds": time.perf_counter() - t0}, indent=1))  # fmt: skip
    report(results, comparison, data, a.arms, a.seeds)
    print(f"\nresults: {path} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
